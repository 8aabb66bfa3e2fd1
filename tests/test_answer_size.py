"""An answer of any size is read only up to its byte cap (issue 19): a runaway provider cannot fill memory,
the history or the page.

The cap is MAX_TOKENS × 16 bytes (`Settings.answer_max_bytes`); past it the stream is closed and the
answer comes back incomplete, saying where it was cut off.
"""

from __future__ import annotations

import time

import pytest

import startup
from domain.errors import ProviderAnswerError
from startup import diagnose, get_engine
from testkit.answers import VALID
from testkit.fake_llm import Reply

TEXT = "2 cm pearly papule on the nose"
# Ten megabytes after a whole answer: what the parser reads in the first KBs looks complete.
RUNAWAY = VALID + "\n" + "padding " * 1_250_000


def wait_for_hangup(fake, seconds: float = 5.0) -> int:
    """The fake's count of clients that hung up mid-answer, once it is not 0 (or after `seconds`)."""
    end = time.monotonic() + seconds
    while fake.hangups == 0 and time.monotonic() < end:
        time.sleep(0.02)
    return fake.hangups


def test_the_cap_follows_max_tokens_within_bounds(engine_env, reconfigure):
    assert get_engine().settings.answer_max_bytes == 700 * 16
    reconfigure(MAX_TOKENS="64")
    assert get_engine().settings.answer_max_bytes == 4_000
    reconfigure(MAX_TOKENS="100000")
    assert get_engine().settings.answer_max_bytes == 64_000


def test_a_runaway_streamed_answer_is_cut_off_and_its_connection_closed(engine_env):
    fake = engine_env
    fake.script(Reply(RUNAWAY, chunk_chars=64))
    cap = get_engine().settings.answer_max_bytes
    progress: list[str] = []
    result = diagnose(text=TEXT, on_progress=progress.append)

    assert not result.complete
    assert len(result.raw.encode()) <= cap and result.raw.startswith(VALID)
    assert "answer cut off at 11.2 KB: far longer than a complete answer" in result.answer.problems
    assert [m.code for m in result.answer.problem_messages] == ["answer.too_long"]
    assert progress and all(len(text.encode()) <= cap for text in progress)
    assert wait_for_hangup(fake) == 1  # the rest of the 10 MB was never read
    row = startup.history().get(result.assessment_id)
    assert row["complete"] == 0 and len(row["raw"].encode()) <= cap
    assert not diagnose(text=TEXT).cached  # an answer cut off is never cached


def test_a_multibyte_answer_is_cut_between_characters(engine_env):
    fake = engine_env
    fake.script(Reply("<root><summary>" + "가나다" * 1_000_000, chunk_chars=333))
    result = diagnose(text=TEXT)
    cap = get_engine().settings.answer_max_bytes
    assert not result.complete and cap - 3 <= len(result.raw.encode()) <= cap
    assert result.raw.endswith(("가", "나", "다"))


def test_a_runaway_json_answer_is_bounded_before_it_is_parsed_or_kept(engine_env, reconfigure):
    fake = engine_env
    reconfigure(LLM_STREAM="false")
    fake.script(Reply(VALID + "\n" + "padding " * 250_000))  # 2 MB in one JSON body
    result = diagnose(text=TEXT)
    cap = get_engine().settings.answer_max_bytes
    assert not result.complete and result.raw.startswith(VALID) and len(result.raw.encode()) <= cap
    assert [m.code for m in result.answer.problem_messages] == ["answer.too_long"]
    assert len(startup.history().get(result.assessment_id)["raw"].encode()) <= cap


@pytest.mark.parametrize("stream", ["true", "false"])
def test_the_helpers_answers_are_bounded_too(engine_env, reconfigure, stream):
    fake = engine_env
    # A description may be as long as the cap here, so what was read is offered (and its length shows the cap).
    reconfigure(LLM_STREAM=stream, MAX_TEXT_CHARS="100000")
    runaway = Reply("A red, itchy patch. " * 500_000, chunk_chars=256)  # 10 MB
    fake.script(runaway, runaway, runaway)
    engine = get_engine()
    out = engine.assist.refine("빨갛고 가려운 반점", language="ko")
    assert 0 < len(out.text.encode()) <= engine.settings.answer_max_bytes
    again = engine.assist.refine("빨갛고 가려운 반점", language="ko")
    assert not again.cached  # cut off: not kept as the helper's answer
    reconfigure(MAX_TEXT_CHARS="4000")  # at the usual limit, a text this long is no description: refused
    with pytest.raises(ProviderAnswerError):
        get_engine().assist.refine("빨갛고 가려운 반점", language="ko")
