"""The one path every answer takes: the cache first, else a race within the time budget, the winner kept.

Assessments and the helpers (refine, explain) differ only in their messages, their cache keys and
how a raw answer is judged; the path from the chain to an answer is this one for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.parser import parse_answer
from domain.result import Usage
from engine import runtime
from engine.health import ProviderHealth
from engine.routing import AttemptFn, Outcome, Race
from engine.warmup import WarmUp
from providers.base import Provider, load_sdk
from storage.cache import AnswerCache
from utils.settings import Settings

_STOP_EARLY = 0.02  # of the budget, at most 0.25 s


@dataclass(frozen=True)
class Answered:
    """One answer from a chain: who gave it, the raw text, what the judge made of it, and how it came."""

    provider: Provider
    raw: str
    usage: Usage
    answer: Any  # the judge's reading of `raw`
    key: str  # the cache key it is (or would be) kept under
    outcome: Outcome | None  # how the race went; None when the answer came from the cache

    @property
    def cached(self) -> bool:
        """True when no provider was asked."""
        return self.outcome is None


class Answerer:
    """Answers a chain of providers with the cache, the race and the providers' health; safe to share."""

    def __init__(self, *, cache: AnswerCache, attempt: AttemptFn, health_of: Callable[[str], ProviderHealth],
                 warm_up: WarmUp, settings: Settings) -> None:
        """`attempt` calls one provider with its retries; `settings` gives HEDGE_AFTER_SECONDS and WARM_UP."""
        self.cache = cache
        self.attempt = attempt
        self.health_of = health_of
        self.warm_up = warm_up
        self.settings = settings

    def answer(self, chain: list[Provider], messages: list[dict[str, Any]], keys: dict[str, str], *, kind: str,
               budget: float, started: float, use_cache: bool = True, judge: Callable[[str], Any] = parse_answer,
               on_progress: Callable[[str], None] | None = None) -> Answered:
        """The cached answer of the first provider in `chain` that has one, else the race's winner.

        `keys` maps each provider's name to its cache key; `budget` (seconds) runs from `started`
        (a `time.monotonic()` value). A complete answer from the race is cached. Raises a
        `ProviderError` when no answer came in time.
        """
        return runtime.drive(self.plan(chain, messages, keys, kind=kind, budget=budget, started=started,
                                       use_cache=use_cache, judge=judge), on_progress)

    def plan(self, chain: list[Provider], messages: list[dict[str, Any]], keys: dict[str, str], *, kind: str,
             budget: float,
             started: float, use_cache: bool = True,
             judge: Callable[[str], Any] = parse_answer) -> runtime.Plan[Answered]:
        """`answer` as a plan (engine/runtime.py): the cache in the driver's thread, the race on the provider loop."""
        if use_cache:
            for provider in dict.fromkeys(chain):
                if hit := self.cache.get(keys[provider.name]):
                    return Answered(provider, hit["raw"], Usage(*hit["usage"]), judge(hit["raw"]), keys[provider.name],
                                    outcome=None)
        self._look_after_skipped(chain)
        # Stop a hair early: cancelling calls and handing the result back takes a few milliseconds,
        # and the clinician must have the answer (or the message) by the budget, not after it.
        deadline = started + budget - min(_STOP_EARLY * budget, 0.25)

        async def race(emit: Callable[[str], None] | None) -> Outcome:
            return await Race(chain, messages, attempt=self.attempt, health_of=self.health_of,
                              hedge_after=self.settings.hedge_after_seconds, started=started, budget=budget,
                              deadline=deadline, kind=kind, emit=emit, judge=judge).run()

        # The SDK's first import takes a second: here, in the caller's thread, not on the provider loop, where it
        # would stall every call's timers (a hedge due at 0.1 s started at 0.7 s). Free once imported.
        load_sdk()
        outcome: Outcome = yield race
        attempt, key = outcome.attempt, keys[outcome.provider.name]
        if outcome.answer.complete:
            self.cache.set(key, {"raw": attempt.raw,
                                 "usage": [attempt.usage.prompt_tokens, attempt.usage.completion_tokens]})
        return Answered(outcome.provider, attempt.raw, attempt.usage, outcome.answer, key, outcome)

    def _look_after_skipped(self, chain: list[Provider]) -> None:
        """Probe providers whose cool-down is over; wake quiet serverless ones for the next clinician."""
        for provider in dict.fromkeys(chain):
            health = self.health_of(provider.name)
            if health.cooling_down:
                self.warm_up.probe(provider)
            elif health.likely_cold and provider is not chain[0] and self.settings.warm_up:
                self.warm_up.wake_one(provider)
