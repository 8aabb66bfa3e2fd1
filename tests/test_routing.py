"""Fallback, hedging, provider health and warm-up, against the local chat-completions server.

RunPod and OpenAI both point at one fake server; the model name in each request says
which provider sent it. These tests pin behaviour, not speed: the bounds on elapsed
time are the time budget itself, which the engine must never exceed.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

import startup
from domain.errors import ProviderAuthError, ProviderError, ProviderTimeout, ProviderUnavailable
from domain.result import Usage
from engine.health import ProviderHealth
from engine.retry import RetryPolicy
from engine.routing import Race
from providers.base import Attempt
from startup import diagnose, warm_up
from testkit.answers import BENIGN, TRUNCATED, VALID
from testkit.fake_llm import Reply
from tests.conftest import OPENAI_MODEL, RUNPOD_MODEL
from tests.waiting import wait_until
from utils.settings import load_settings

LOCAL_MODEL = "local-derm"


@pytest.fixture
def both(engine_env, reconfigure):
    """Fallback on (RunPod first, then OpenAI); hedging stays off unless a test sets it."""
    reconfigure(PROVIDER_FALLBACKS="runpod,openai", WARM_UP="true")
    return engine_env


def by_model(fake, replies: dict[str, Reply]):
    fake.responder = lambda request: replies.get(request.body.get("model"))


def models(fake) -> list[str]:
    return [r.body["model"] for r in fake.chat_requests]


def test_failure_falls_back_to_the_next_provider(both):
    by_model(both, {RUNPOD_MODEL: Reply.error(401)})
    result = diagnose(text="pearly papule")
    assert result.provider == "openai" and result.complete
    assert result.fallback and not result.hedged
    assert result.tried == ("runpod", "openai")
    assert models(both) == [RUNPOD_MODEL, OPENAI_MODEL]  # 401 is never retried


def test_fallback_order_is_kept(both, reconfigure):
    reconfigure(PROVIDER_FALLBACKS="runpod,local,openai", LOCAL_BASE_URL=both.url, LOCAL_MODEL=LOCAL_MODEL)
    by_model(both, {RUNPOD_MODEL: Reply.error(403), LOCAL_MODEL: Reply.error(404)})
    result = diagnose(text="pearly papule")
    assert result.provider == "openai"
    assert models(both) == [RUNPOD_MODEL, LOCAL_MODEL, OPENAI_MODEL]


def test_no_fallback_for_a_reviewer_who_wants_one_provider(both):
    by_model(both, {RUNPOD_MODEL: Reply.error(401)})
    with pytest.raises(ProviderAuthError):
        diagnose(text="pearly papule", fallback=False)
    assert models(both) == [RUNPOD_MODEL]


def test_every_provider_failing_says_so_for_each(both):
    by_model(both, {RUNPOD_MODEL: Reply.error(401), OPENAI_MODEL: Reply.error(401)})
    with pytest.raises(ProviderAuthError) as caught:
        diagnose(text="pearly papule")
    assert "RUNPOD_API_KEY" in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)


def test_retry_wait_lets_the_fallback_answer_meanwhile(both):
    by_model(both, {RUNPOD_MODEL: Reply.error(429, headers={"Retry-After": "5"})})
    started = time.monotonic()
    result = diagnose(text="pearly papule")
    assert result.provider == "openai" and result.fallback
    assert time.monotonic() - started < 5  # the 5 s Retry-After was not sat out


def test_incomplete_answer_from_the_first_gives_way_to_a_complete_one(both):
    by_model(both, {RUNPOD_MODEL: Reply(TRUNCATED)})
    result = diagnose(text="pearly papule")
    assert result.provider == "openai" and result.complete


def test_incomplete_answer_is_returned_when_nothing_better_comes(both):
    by_model(both, {RUNPOD_MODEL: Reply(TRUNCATED), OPENAI_MODEL: Reply.error(500)})
    result = diagnose(text="pearly papule")
    assert not result.complete and result.provider == "runpod"


def test_hedge_starts_the_next_provider_and_cancels_the_loser(both, reconfigure):
    reconfigure(HEDGE_AFTER_SECONDS="0.2")
    by_model(both, {RUNPOD_MODEL: Reply(VALID, delay=3), OPENAI_MODEL: Reply(BENIGN)})
    started = time.monotonic()
    result = diagnose(text="pearly papule")
    assert result.provider == "openai" and result.hedged and not result.fallback
    assert result.label.lesion.code == 7
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 2
    while both.hangups < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert both.hangups == 1  # RunPod's call was cancelled: its connection closed


def test_no_hedge_when_the_first_token_comes_in_time(both, reconfigure):
    # The first token comes at once; the hedge waits 5 s, room for a loaded machine (0.5 s flaked under a full run).
    reconfigure(HEDGE_AFTER_SECONDS="5")
    by_model(both, {RUNPOD_MODEL: Reply(VALID, chunk_delay=0.02)})
    result = diagnose(text="pearly papule")
    assert result.provider == "runpod" and not result.hedged
    assert result.first_token_ms is not None and result.first_token_ms < 5000
    assert models(both) == [RUNPOD_MODEL]


def test_hosted_provider_hedges_against_its_own_slow_tail(engine_env, reconfigure):
    reconfigure(SKIN_DIAGNOSIS_PROVIDER="openai", PROVIDER_FALLBACKS="openai", HEDGE_AFTER_SECONDS="0.2")
    engine_env.script(Reply(VALID, delay=3), Reply(BENIGN))
    result = diagnose(text="pearly papule")
    assert result.hedged and result.label.lesion.code == 7
    assert models(engine_env) == [OPENAI_MODEL, OPENAI_MODEL]


@pytest.mark.parametrize("kind", ["text", "image"])
def test_budget_is_never_exceeded(both, reconfigure, kind):
    reconfigure(TEXT_BUDGET_SECONDS="0.8", IMAGE_BUDGET_SECONDS="1.2", HEDGE_AFTER_SECONDS="0.1",
                LLM_MAX_RETRIES="3")
    both.default = Reply(VALID, hang=True)
    from testkit.corpus import phone_jpeg  # a 12 MP photo: shrinking counts against the budget too

    args = {"text": "pearly papule"} if kind == "text" else {"image": phone_jpeg()}
    budget = 0.8 if kind == "text" else 1.2
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        diagnose(**args)
    elapsed = time.monotonic() - started
    # Every provider hangs: without the budget this would wait for REQUEST_TIMEOUT (30 s) per retry. The slack is
    # for the cancelling and, on a machine busy with the rest of the suite, for the threads' wake-ups (2 s seen).
    assert elapsed < budget + 5.0, elapsed
    assert "RunPod" in str(caught.value) and "OpenAI" in str(caught.value)


def test_cold_start_sends_the_next_cases_elsewhere_until_a_probe_finds_it_back(both, reconfigure, health_clock):
    reconfigure(COLD_START_SECONDS="0.3", HEALTH_COOLDOWN_SECONDS="0.3")
    by_model(both, {RUNPOD_MODEL: Reply(VALID, delay=0.4)})
    first = diagnose(text="case one")
    assert first.provider == "runpod"  # slow, but it answered: a cold start
    health = startup.get_engine().health["runpod"]
    assert health.cooling_down
    both.responder = None  # the worker is warm now
    second = diagnose(text="case two")
    assert second.provider == "openai" and not second.fallback  # RunPod skipped, straight to OpenAI
    assert models(both) == [RUNPOD_MODEL, OPENAI_MODEL]  # and no probe during the cool-down
    health_clock.now += 0.35
    third = diagnose(text="case three")  # the cool-down is over: one probe goes out, this case still elsewhere
    assert third.provider == "openai"
    probes = [r for r in both.wait_for_requests(4) if r.body["max_completion_tokens"] == 1]
    assert [r.body["model"] for r in probes] == [RUNPOD_MODEL]
    deadline = time.monotonic() + 2
    while health.cooling_down and time.monotonic() < deadline:
        time.sleep(0.02)
    assert diagnose(text="case four").provider == "runpod"  # the probe answered quickly: back


def test_a_slow_probe_keeps_the_provider_skipped_for_longer(both, reconfigure, health_clock):
    reconfigure(COLD_START_SECONDS="0.3", HEALTH_COOLDOWN_SECONDS="1")
    by_model(both, {RUNPOD_MODEL: Reply(VALID, delay=0.4)})  # every RunPod call is a cold start
    diagnose(text="case one")
    health = startup.get_engine().health["runpod"]
    assert 0 < health.cooldown_left() <= 1.0
    health_clock.now += 1.05
    diagnose(text="case two")  # sends the probe, which is slow too
    # The probe runs in the background: wait for its verdict, then read the new cool-down (not a timing bound).
    deadline = time.monotonic() + 10
    while health.cooldown_left() <= 1.0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert health.cooling_down and not health.probe_due()
    assert 1.0 < health.cooldown_left() <= 2.0  # the second cool-down is twice as long


def test_repeated_failures_open_the_breaker(both, reconfigure):
    reconfigure(HEALTH_FAILURES="2", LLM_MAX_RETRIES="0")
    by_model(both, {RUNPOD_MODEL: Reply.error(503)})
    diagnose(text="case one")
    diagnose(text="case two")
    assert startup.get_engine().health["runpod"].cooling_down
    before = models(both).count(RUNPOD_MODEL)
    assert diagnose(text="case three").provider == "openai"
    assert models(both).count(RUNPOD_MODEL) <= before + 1  # at most the probe


def test_warm_up_pings_serverless_providers_once_per_interval(both, reconfigure):
    reconfigure(WARM_UP_SECONDS="30")
    assert warm_up() == ["runpod"]
    ping = both.wait_for_requests(1)[0]
    assert ping.body["model"] == RUNPOD_MODEL
    assert ping.body["max_completion_tokens"] == 1 and ping.body["max_tokens"] == 1
    assert warm_up() == []  # too soon: no second ping
    time.sleep(0.2)
    assert models(both) == [RUNPOD_MODEL]


def test_keep_warm_pings_while_sessions_are_active(both, reconfigure):
    reconfigure(KEEP_WARM_SECONDS="0.15", WARM_UP_SECONDS="0")
    warm_up()
    # The first ping builds the provider's client (and, first in a process, imports the SDK): wait for the pings
    # to come rather than for a fixed time.
    wait_until(lambda: models(both).count(RUNPOD_MODEL) >= 3, seconds=20)


def test_keep_warm_is_off_by_default(both):
    warm_up()
    time.sleep(0.5)
    assert models(both) == [RUNPOD_MODEL]


def test_warm_up_can_be_switched_off(both, reconfigure):
    reconfigure(WARM_UP="false")
    assert warm_up() == []
    time.sleep(0.2)
    assert both.requests == []


def test_hedge_delay_follows_recent_first_tokens():
    health = ProviderHealth("x", cold_start=10, hedge_bounds=(0.75, 4.0))
    assert health.hedge_after() == 1.5  # no history yet
    for seconds in (0.4, 0.5, 0.6, 0.5, 0.45, 0.55, 0.5, 0.6):
        health.first_token(seconds)
    assert 0.75 <= health.hedge_after() <= 1.0
    assert health.hedge_after("image") == 1.5  # photos keep their own record
    for _ in range(20):
        health.first_token(3.5)
    assert health.hedge_after() == 4.0  # never waits longer than the ceiling


def test_a_whole_answers_hedge_follows_recent_answers_else_waits_half_the_budget():
    health = ProviderHealth("x", cold_start=10, hedge_bounds=(0.75, 4.0))
    assert health.answer_hedge_after("text", budget=15) == 7.5  # nothing known: the other half for the next one
    for seconds in (3.2, 3.4, 3.5, 3.3, 3.6, 3.4):
        health.answered(seconds, "text")
    assert 3.6 * 1.25 - 0.3 <= health.answer_hedge_after("text", budget=15) <= 3.6 * 1.25
    assert health.answer_hedge_after("image", budget=30) == 15  # photos keep their own record
    assert health.hedge_after() == 1.5  # first tokens are another record


def test_an_unwatched_race_asks_for_whole_answers_and_hedges_on_answer_time_not_first_token():
    first, second = SimpleNamespace(name="a", title="A"), SimpleNamespace(name="b", title="B")
    health = {"a": ProviderHealth("a"), "b": ProviderHealth("b")}
    for _ in range(5):
        health["a"].answered(0.2, "text")  # a answers whole in 0.2 s as a rule: its hedge is due at 0.25 s
    texts: list = []

    async def attempt(provider, messages, deadline, budget, on_text, on_retry):
        texts.append(on_text)
        if provider is first:
            await asyncio.sleep(30)  # stuck: only the hedge can save the answer
        return Attempt(VALID, Usage(10, 20))

    now = time.monotonic()
    # A first-token hedge of 0.01 s would double every call; for whole answers it does not apply.
    race = Race([first, second], [], attempt=attempt, health_of=health.__getitem__, hedge_after=0.01, started=now,
                budget=5, deadline=now + 5, kind="text", emit=None)
    outcome = asyncio.run(race.run())
    assert outcome.provider is second and outcome.hedged and outcome.first_token_s is None
    assert texts == [None, None]  # neither provider was asked to stream


def test_breaker_opens_cools_down_probes_once_and_doubles():
    now = [0.0]
    health = ProviderHealth("x", failures_to_open=2, cooldown=10, clock=lambda: now[0])
    health.failure()
    assert not health.cooling_down
    health.failure()
    assert health.cooling_down and not health.probe_due()
    now[0] = 10.5
    assert health.probe_due() and not health.probe_due()  # one probe per cool-down
    assert health.cooling_down  # half-open: still skipped until the probe answers
    health.pinged(30)  # slow: a worker had to boot
    assert health.cooling_down
    now[0] = 25
    assert not health.probe_due()  # second opening: 20 s
    now[0] = 31
    assert health.probe_due()
    health.pinged(0.4)
    assert not health.cooling_down
    health.success()
    assert not health.cooling_down


def test_cold_start_opens_the_breaker_and_a_warm_answer_closes_it():
    health = ProviderHealth("x", cold_start=10)
    health.first_token(45)
    assert health.cooling_down
    health.first_token(0.6)
    assert not health.cooling_down


def test_a_quiet_serverless_provider_is_woken_while_another_answers(both, reconfigure, health_clock):
    reconfigure(SERVERLESS_IDLE_SECONDS="0.2", WARM_UP_SECONDS="0")
    assert diagnose(text="case one").provider == "runpod"
    health_clock.now += 0.3  # longer than RunPod keeps an idle worker
    second = diagnose(text="case two")
    assert second.provider == "openai" and not second.fallback
    ping = [r for r in both.wait_for_requests(3) if r.body["max_completion_tokens"] == 1]
    assert [r.body["model"] for r in ping] == [RUNPOD_MODEL]


def test_serverless_idle_timeout_is_learned_from_quick_answers_after_quiet_spells():
    now = [0.0]
    health = ProviderHealth("x", serverless=True, idle_timeout=5, clock=lambda: now[0])
    assert not health.likely_cold  # nothing known yet
    health.first_token(0.5)
    now[0] = 3
    assert not health.likely_cold
    now[0] = 60
    assert health.likely_cold
    health.pinged(0.4)  # quick after 60 s of quiet: workers stay up longer than 5 s here
    now[0] = 110
    assert not health.likely_cold and health.idle_timeout >= 59


def test_a_race_needs_no_engine_only_a_way_to_call_each_provider():
    first, second = SimpleNamespace(name="a", title="A"), SimpleNamespace(name="b", title="B")
    health = {"a": ProviderHealth("a"), "b": ProviderHealth("b")}
    asked = []

    async def attempt(provider, messages, deadline, budget, on_text, on_retry):
        asked.append(provider.name)
        if provider is first:
            raise ProviderUnavailable("A is down.", provider="a")
        on_text(VALID)
        return Attempt(VALID, Usage(10, 20))

    now = time.monotonic()
    race = Race([first, second], [], attempt=attempt, health_of=health.__getitem__, hedge_after=0, started=now,
                budget=5, deadline=now + 5, kind="text", emit=lambda _text: None)
    outcome = asyncio.run(race.run())
    assert outcome.provider is second and outcome.answer.complete and outcome.attempt.usage == Usage(10, 20)
    assert outcome.fallback and not outcome.hedged and outcome.tried == ("a", "b") == tuple(asked)


def test_backoff_honours_retry_after_else_grows_with_jitter_up_to_a_ceiling():
    policy = RetryPolicy(load_settings(env={"LLM_RETRY_BASE_DELAY": "1"}, env_file=None), health_of={}.__getitem__)
    assert policy.backoff(0, retry_after=2.5) == 2.5
    assert 0.75 <= policy.backoff(0, None) <= 1.0
    assert 1.5 <= policy.backoff(1, None) <= 2.0
    assert 6.0 <= policy.backoff(10, None) <= 8.0


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refusal_ends_that_providers_part_in_the_race(engine_env, reconfigure, status):
    # OpenAI is listed twice (a hedge against its own slow tail); a refused request must not be sent again as the
    # second lane's "fallback", and the clinician reads the reason once. The hedge waits 2 s so that the refusal
    # (answered at once) always comes first, even on a loaded machine: a hedge sent before it would be right to go.
    reconfigure(SKIN_DIAGNOSIS_PROVIDER="openai", PROVIDER_FALLBACKS="openai", HEDGE_AFTER_SECONDS="2")
    engine_env.script(Reply.error(status), Reply(VALID))
    with pytest.raises(ProviderError) as caught:
        diagnose(text="pearly papule")
    assert caught.value.refusal
    assert models(engine_env) == [OPENAI_MODEL]
    assert "Also" not in str(caught.value)


def test_a_refusal_still_falls_back_to_another_provider(both):
    by_model(both, {RUNPOD_MODEL: Reply.error(400)})
    result = diagnose(text="pearly papule")
    assert result.provider == "openai" and models(both) == [RUNPOD_MODEL, OPENAI_MODEL]


def test_a_server_error_is_still_worth_a_second_lane_to_the_same_provider(engine_env, reconfigure):
    reconfigure(SKIN_DIAGNOSIS_PROVIDER="openai", PROVIDER_FALLBACKS="openai", HEDGE_AFTER_SECONDS="0.2",
                LLM_MAX_RETRIES="0")
    engine_env.script(Reply.error(500), Reply(VALID))
    result = diagnose(text="pearly papule")
    assert result.complete and models(engine_env) == [OPENAI_MODEL, OPENAI_MODEL]
