"""The benchmark simulator speaks the protocol and behaves like the providers it plays.

Run at scale 0.01 (a 90 s cold start takes 0.9 s), so timings are compared by their
order of magnitude only, never against absolute numbers.
"""

from __future__ import annotations

import base64
import io
import random
import time

import httpx
import openai
import pytest
from PIL import Image

from bench.simulator import (
    HostedProfile,
    ServerlessProfile,
    Simulator,
    contract_answer,
    count_tokens,
    image_size,
    llamacpp_profile,
)
from domain.parser import parse_answer

SCALE = 0.01
MESSAGES = [{"role": "system", "content": "Classify the lesion into one of 15 classes."},
            {"role": "user", "content": "5 mm pearly papule beside the nose"}]


def quiet_hosted(**changes) -> HostedProfile:
    """An OpenAI-like profile without random failures, slow tails or rate limit: for exact assertions."""
    return HostedProfile(**{"error_rate": 0, "hang_rate": 0, "slow_rate": 0, "rate_limit_rpm": None, **changes})


def client(sim: Simulator, name: str) -> openai.OpenAI:
    # trust_env off: a developer's HTTP(S)_PROXY must not capture 127.0.0.1.
    return openai.OpenAI(base_url=sim.url(name), api_key="x", max_retries=0,
                         http_client=httpx.Client(trust_env=False))


def read_stream(stream) -> tuple[str, str | None, object]:
    """(content, finish_reason, usage) of a streamed completion."""
    parts, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(parts), finish, usage


def settled(sim: Simulator, timeout: float = 5.0) -> list:
    """The simulator's records once none is still pending: a record is closed just after its last bytes are sent,
    so the client may read its answer a moment before the server has written the outcome down."""
    deadline = time.monotonic() + timeout
    records = sim.records()
    while any(r.outcome == "pending" for r in records) and time.monotonic() < deadline:
        time.sleep(0.01)
        records = sim.records()
    return records


def test_cold_start_then_warm_request_both_protocols():
    # A long idle timeout: at SCALE the default 5 s is 50 ms of wall time, which a loaded machine can spend between
    # the two requests, and the worker would idle out (idle-outs have their own tests).
    profile = ServerlessProfile(idle_timeout=600)
    with Simulator({"runpod": profile}, scale=SCALE, seed=1) as sim, client(sim, "runpod") as llm:
        cold = llm.chat.completions.create(model="clinic-derm-v1", messages=MESSAGES)
        text, finish, usage = read_stream(llm.chat.completions.create(
            model="clinic-derm-v1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))

        assert cold.choices[0].finish_reason == "stop" and parse_answer(cold.choices[0].message.content).complete
        assert finish == "stop" and parse_answer(text).complete
        assert usage.completion_tokens == count_tokens(text) and 200 <= usage.completion_tokens <= 450
        # The boot shows on the simulator's own clock (60-150 s, scaled), not as a wall-time ratio a loaded machine
        # could upset.
        first, second = settled(sim)
        assert (first.cold_start, second.cold_start) == (True, False)
        assert first.queue_wait >= 60 and second.queue_wait < 1
        assert sim.stats()["runpod"]["workers_booted"] == 1


def test_worker_scales_to_zero_after_idle_timeout():
    fast_boot = ServerlessProfile(cold_start=(10, 20), cold_start_mode=15, idle_timeout=5)
    with Simulator({"runpod": fast_boot}, scale=SCALE, seed=2) as sim, client(sim, "runpod") as llm:
        for _ in range(2):
            llm.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)
        time.sleep(20 * SCALE)                    # well past the 5 s idle timeout
        assert sim.stats()["runpod"]["workers_live"] == 0
        llm.chat.completions.create(model="m", messages=MESSAGES, max_tokens=5)

        assert [r.cold_start for r in sim.records()] == [True, False, True]
        first, second = sim.workers()
        assert first.stopped is not None and second.stopped is None
        assert sim.stats()["runpod"]["workers_booted"] == 2


def test_token_limit_cuts_the_answer_with_finish_reason_length():
    with Simulator({"openai": quiet_hosted()}, scale=SCALE, seed=3) as sim, client(sim, "openai") as llm:
        cut = llm.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=20)
        text, finish, usage = read_stream(llm.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_completion_tokens=15, stream=True,
            stream_options={"include_usage": True}))

    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 20
    assert "</root>" not in cut.choices[0].message.content
    assert not parse_answer(cut.choices[0].message.content).complete
    assert (finish, usage.completion_tokens) == ("length", 15) and "</root>" not in text


def test_llamacpp_like_server_ignores_max_completion_tokens():
    with Simulator({"local": llamacpp_profile()}, scale=SCALE, seed=4) as sim, client(sim, "local") as llm:
        ignored = llm.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=15)
        honoured = llm.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=15,
                                               max_tokens=10)

    assert ignored.choices[0].finish_reason == "stop" and ignored.usage.completion_tokens > 15
    assert honoured.choices[0].finish_reason == "length" and honoured.usage.completion_tokens == 10


RPM = 0.01


def test_rate_limit_answers_429_with_retry_after():
    # One request per 100 simulated minutes: a minute would be 0.6 s here, which a loaded machine can spend between
    # the calls, and the bucket would have refilled.
    limited = quiet_hosted(rate_limit_rpm=RPM, rate_limit_burst=2)
    with Simulator({"openai": limited}, scale=SCALE, seed=5) as sim, client(sim, "openai") as llm:
        for _ in range(2):
            llm.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1)
        with pytest.raises(openai.RateLimitError) as caught:
            llm.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1)

    headers = caught.value.response.headers
    assert 0 < float(headers["retry-after"]) <= 60 / RPM * SCALE + 0.001   # wall seconds, scaled
    assert int(headers["retry-after-ms"]) > 0
    assert [r.outcome for r in sim.records()] == ["length", "length", "rate_limited"]


def test_client_hanging_up_frees_the_worker_slot():
    slow = llamacpp_profile(tokens_per_second=2)   # one slot; a whole answer would take ~150 s
    with Simulator({"local": slow}, scale=SCALE, seed=6) as sim:
        with httpx.Client(trust_env=False, timeout=5) as http:
            body = {"model": "m", "messages": MESSAGES, "stream": True}
            with http.stream("POST", sim.url("local") + "/chat/completions", json=body) as response:
                assert response.status_code == 200
                next(response.iter_raw())          # the answer has started: the slot is taken
        with client(sim, "local") as llm:
            llm.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)

        abandoned, next_one = settled(sim)
        assert abandoned.outcome == "disconnected" and abandoned.completion_tokens < 50
        assert next_one.outcome == "length" and next_one.queue_wait < 10


def test_image_size_is_read_and_charged():
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1500), "tan").save(buffer, "JPEG", quality=50)
    url = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert image_size(url) == (2000, 1500)

    photo = [{"role": "user", "content": [{"type": "text", "text": "Assess the lesion."},
                                          {"type": "image_url", "image_url": {"url": url, "detail": "high"}}]}]
    with Simulator({"runpod": llamacpp_profile(context_limit=16384)}, scale=SCALE, seed=7) as sim, \
            client(sim, "runpod") as llm:
        llm.chat.completions.create(model="m", messages=photo, max_tokens=1)
        llm.chat.completions.create(model="m", messages=MESSAGES, max_tokens=1)

    with_image, text_only = sim.records()
    assert with_image.image_pixels == 3_000_000 and text_only.image_pixels == 0
    assert with_image.prompt_tokens > 10 * text_only.prompt_tokens


def test_same_seed_same_answers():
    def first_answer(seed: int) -> str:
        with Simulator({"openai": quiet_hosted()}, scale=SCALE, seed=seed) as sim, client(sim, "openai") as llm:
            return llm.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content

    assert first_answer(8) == first_answer(8) != first_answer(9)
    assert contract_answer(random.Random(1)) == contract_answer(random.Random(1))


def test_unknown_provider_is_404_and_stats_are_served():
    with Simulator({"openai": quiet_hosted()}, scale=SCALE, seed=10) as sim, \
            httpx.Client(trust_env=False) as http:
        base = f"http://127.0.0.1:{sim.port}"
        missing = http.post(f"{base}/nobody/v1/chat/completions", json={"messages": []})
        bad = http.post(f"{sim.url('openai')}/chat/completions", content=b"not json")
        stats = http.get(f"{base}/_stats?records=1").json()

    assert missing.status_code == 404 and "openai" in missing.json()["error"]["message"]
    assert bad.status_code == 400
    assert stats["providers"]["openai"]["outcomes"] == {"bad_request": 1}
    assert stats["records"][0]["status"] == 400


def test_answers_follow_the_case_and_a_provider_differs_on_its_share():
    from bench.simulator.answers import case_class

    def code(sim: Simulator, name: str, text: str) -> int:
        messages = [MESSAGES[0], {"role": "user", "content": text}]
        with client(sim, name) as llm:
            answer = llm.chat.completions.create(model="m", messages=messages).choices[0].message.content
        return parse_answer(answer).label.lesion.code

    profiles = {"alike": quiet_hosted(differ_rate=0.0), "same": quiet_hosted(differ_rate=0.0),
                "other": quiet_hosted(differ_rate=1.0), "random": quiet_hosted()}
    with Simulator(profiles, scale=SCALE, seed=11) as sim:
        cases = [f"case {n}: a 5 mm pearly papule" for n in range(6)]
        alike = [code(sim, "alike", text) for text in cases]
        assert [code(sim, "alike", text) for text in cases] == alike    # one case, one class, asked again
        assert [code(sim, "same", text) for text in cases] == alike     # and by another provider
        assert all(code(sim, "other", text) != own for text, own in zip(cases, alike, strict=True))
        assert len(set(alike)) > 1                                      # the class is the case's, not a constant

    # A share of cases, seeded: about that share, the same ones every time.
    many = [[{"role": "user", "content": f"case {n}"}] for n in range(400)]
    differs = [case_class(1, m, "runpod", 0.15) != case_class(1, m, "openai", 0.0) for m in many]
    assert 30 <= sum(differs) <= 90
    assert differs == [case_class(1, m, "runpod", 0.15) != case_class(1, m, "openai", 0.0) for m in many]
