"""The helper pipelines: a patient's words as a clinical description (refine), an assessment in plain words (explain).

Same providers, cache, budget and race as an assessment (`Answerer`); only the answer is plain text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from domain.errors import InputError, ProviderAnswerError
from domain.helper_text import explain_problem, refine_problem
from domain.messages import Message
from domain.prompt import explain_messages, refine_messages
from domain.request import DiagnosisRequest
from domain.result import Assist, Diagnosis, TextAnswer
from engine import runtime
from engine.answering import Answerer
from engine.cache_keys import assist_key
from providers.base import Provider
from utils.settings import Settings


def _judge(check: Callable[[str], Message | None]) -> Callable[[str], TextAnswer]:
    """The race's judge for a helper: the stripped text, refused (so incomplete) when `check` finds a fault."""
    def judge(raw: str) -> TextAnswer:
        text = raw.strip()
        return TextAnswer(text, refused=check(text))
    return judge


class Assistant:
    """Runs refine and explain; safe to share between threads."""

    def __init__(self, answerer: Answerer, *, chain: Callable[[DiagnosisRequest], list[Provider]],
                 validate: Callable[[DiagnosisRequest], None], settings: Settings) -> None:
        """`chain` and `validate` are an assessment's own (`Engine.chain`, `Engine.validate`).

        So the helpers choose their providers and check their input exactly as an assessment does.
        """
        self.answerer = answerer
        self.chain = chain
        self.validate = validate
        self.settings = settings

    def refine(self, text: str, *, language: str = "ko", provider: str | None = None,
               use_cache: bool = True) -> Assist:
        """A patient's own words rewritten as a concise clinical description (the original 'refine')."""
        return runtime.drive(self.refine_plan(text, language=language, provider=provider, use_cache=use_cache))

    def explain(self, result: Diagnosis, *, language: str = "ko", provider: str | None = None,
                use_cache: bool = True) -> Assist:
        """An assessment in plain language for the patient (the original 'explain')."""
        return runtime.drive(self.explain_plan(result, language=language, provider=provider, use_cache=use_cache))

    def refine_plan(self, text: str, *, language: str = "ko", provider: str | None = None,
                    use_cache: bool = True) -> runtime.Plan[Assist]:
        """`refine` as a plan (engine/runtime.py), for `Engine.aplan` on an event loop."""
        if not text.strip():
            raise InputError(Message("assist.nothing_to_refine"))
        self.validate(DiagnosisRequest(text=text, language=language, provider=provider))  # an assessment's limits
        limit = self.settings.max_text_chars
        return (yield from self._ask("refine", refine_messages(text, language), text.strip(), language, provider,
                                     use_cache, lambda answer: refine_problem(answer, limit)))

    def explain_plan(self, result: Diagnosis, *, language: str = "ko", provider: str | None = None,
                     use_cache: bool = True) -> runtime.Plan[Assist]:
        """`explain` as a plan (engine/runtime.py), for `Engine.aplan` on an event loop."""
        if result.label is None:
            raise InputError(Message("assist.nothing_to_explain"))
        label = result.label.lesion.name_ko if language == "ko" else result.label.lesion.name_en
        risk = result.risk_flag.value if result.risk_flag else "benign"
        messages = explain_messages(label, risk, result.answer.summary, language)
        return (yield from self._ask("explain", messages, f"{label}|{risk}|{result.answer.summary}", language,
                                     provider, use_cache, explain_problem))

    def _ask(self, task: str, messages: list[dict[str, Any]], subject: str, language: str, provider: str | None,
             use_cache: bool, check: Callable[[str], Message | None]) -> runtime.Plan[Assist]:
        """Ask the chain; raise `ProviderAnswerError` when the best answer had not the shape `check` wants."""
        started = time.monotonic()
        chain = self.chain(DiagnosisRequest(text=subject, language=language, provider=provider))
        keys = {p.name: assist_key(task, subject, language, p, self.settings) for p in dict.fromkeys(chain)}
        got = yield from self.answerer.plan(chain, messages, keys, kind="text",
                                            budget=self.settings.text_budget_seconds, started=started,
                                            use_cache=use_cache, judge=_judge(check))
        if got.answer.refused is not None:  # no provider did better; never offer XML as a description
            raise ProviderAnswerError(got.answer.refused, provider=got.provider.name, retryable=True)
        return Assist(task, got.answer.text, got.provider.name, got.provider.model,
                      (time.monotonic() - started) * 1000, got.usage, cached=got.cached)
