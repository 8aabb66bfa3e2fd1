"""The engine against a real (fake) OpenAI-compatible server: exact requests, retries, budget, cache.

Everything goes through the public entry `startup.diagnose` so that what is pinned here
is what the pages and the command line get.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from xml.sax.saxutils import escape

import httpx
import pytest
from PIL import Image

from domain.classes import CLASSES
from domain.errors import (
    InputError,
    ProviderAuthError,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderTimeout,
    ProviderUnavailable,
)
from domain.result import Usage
from startup import diagnose, get_engine
from testkit.answers import BENIGN, REFUSAL, TRUNCATED, VALID, fenced, xml_answer
from testkit.fake_llm import FakeLLM, Reply, closed_port_url
from tests.conftest import OPENAI_KEY, OPENAI_MODEL, PROJECT_ROOT, RUNPOD_KEY, RUNPOD_MODEL

TEXT = '2 cm pearly papule on the nose <rolled edge> & "telangiectasia"'
KEYS = (RUNPOD_KEY, OPENAI_KEY)


def only_request(fake: FakeLLM):
    requests = fake.chat_requests
    assert len(requests) == 1, f"expected exactly one request, got {len(requests)}"
    return requests[0]


def jpeg_photo(width: int = 4000, height: int = 3000) -> bytes:
    """A camera-like JPEG with EXIF (maker, model, GPS) that must not leave the machine."""
    img = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "TestCam"          # Make
    exif[0x0110] = "Model X"          # Model
    exif[0x0112] = 1                  # Orientation
    exif.get_ifd(0x8825)[2] = (37.0, 33.0, 0.0)  # GPSLatitude
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


# -- the request on the wire ----------------------------------------------------------------

@pytest.mark.parametrize("provider", ["runpod", "openai", "local"])
def test_text_request_is_exact(engine_env, reconfigure, provider):
    fake = engine_env
    reconfigure(MAX_TOKENS="321", LOCAL_BASE_URL=fake.url, LOCAL_MODEL="llama-local")
    result = diagnose(text=f"  {TEXT}\n", provider=provider)
    assert result.complete and result.provider == provider

    request = only_request(fake)
    assert request.path == "/v1/chat/completions"
    body = request.body
    model = {"runpod": RUNPOD_MODEL, "openai": OPENAI_MODEL, "local": "llama-local"}[provider]
    expected_keys = {"model", "messages", "temperature", "max_completion_tokens", "stream", "stream_options"}
    if provider != "openai":
        expected_keys.add("max_tokens")  # llama.cpp and older vLLM ignore max_completion_tokens
        assert body["max_tokens"] == 321
    assert set(body) == expected_keys
    assert body["model"] == model
    assert body["temperature"] == pytest.approx(0.1)
    assert body["max_completion_tokens"] == 321
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}

    system, user = body["messages"]
    assert system["role"] == "system" and isinstance(system["content"], str)
    for c in CLASSES:
        assert f"{c.code}: {c.name_ko} ({c.name_en})" in system["content"]
    assert "<root>" in system["content"] and "similar_labels" in system["content"]
    assert user["role"] == "user"
    assert user["content"] == [{"type": "text", "text": f"<patient_description>{escape(TEXT)}</patient_description>"}]
    assert "&lt;rolled edge&gt; &amp;" in user["content"][0]["text"]

    key = {"runpod": RUNPOD_KEY, "openai": OPENAI_KEY, "local": None}[provider]
    auth = request.headers["authorization"]
    if key:
        assert auth == f"Bearer {key}"
    assert not any(k in auth for k in KEYS if k != key)
    for k in KEYS:
        assert k.encode() not in request.raw


def test_runpod_style_url_prefix(engine_env, reconfigure):
    fake = engine_env
    reconfigure(RUNPOD_BASE_URL=fake.url.replace("/v1", "/v2/abc123endpoint/openai/v1/"))
    assert diagnose(text=TEXT).complete
    assert only_request(fake).path == "/v2/abc123endpoint/openai/v1/chat/completions"


def test_photo_is_shrunk_and_stripped_before_sending(engine_env):
    fake = engine_env
    photo = jpeg_photo()
    assert b"TestCam" in photo
    result = diagnose(image=photo)
    assert result.complete and result.provider == "runpod"

    request = only_request(fake)
    assert b"TestCam" not in request.raw
    text_part, image_part = request.body["messages"][1]["content"]
    assert text_part["type"] == "text" and "photo" in text_part["text"]
    assert "patient_description" not in text_part["text"]
    assert image_part["type"] == "image_url"
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    jpeg = base64.b64decode(url.split(",", 1)[1], validate=True)
    assert jpeg[:2] == b"\xff\xd8" and b"TestCam" not in jpeg and b"Exif" not in jpeg
    sent = Image.open(io.BytesIO(jpeg))
    assert sent.format == "JPEG"
    assert sent.size == (512, 384)
    assert not sent.getexif() and "exif" not in sent.info
    assert result.image is not None and result.image.jpeg == jpeg


def test_text_and_photo_go_in_one_request(engine_env):
    fake = engine_env
    diagnose(text=TEXT, image=jpeg_photo(800, 600))
    text_part, image_part = only_request(fake).body["messages"][1]["content"]
    assert f"<patient_description>{escape(TEXT)}</patient_description>" in text_part["text"]
    assert image_part["image_url"]["url"].startswith("data:image/jpeg;base64,")


# -- answers: JSON and streamed -------------------------------------------------------------

def test_non_streaming_json_path(engine_env, reconfigure):
    fake = engine_env
    reconfigure(LLM_STREAM="false")
    fake.script(Reply(VALID, usage=(321, 123)))
    progress: list[str] = []
    result = diagnose(text=TEXT, on_progress=progress.append)

    body = only_request(fake).body
    assert not body.get("stream") and "stream_options" not in body
    assert body["max_tokens"] == body["max_completion_tokens"] == get_engine().settings.max_tokens
    assert result.complete and result.raw == VALID
    assert result.usage == Usage(321, 123)
    assert progress == []


def test_streaming_reports_growing_prefixes_in_the_calling_thread(engine_env):
    fake = engine_env
    fake.script(Reply(VALID, chunk_chars=5, chunk_delay=0.004, usage=(150, 90)))
    progress: list[tuple[str, int]] = []
    result = diagnose(text=TEXT, on_progress=lambda s: progress.append((s, threading.get_ident())))

    assert result.raw == VALID and result.complete and result.usage == Usage(150, 90)
    texts = [t for t, _ in progress]
    assert len(texts) >= 3
    assert all(VALID.startswith(t) for t in texts)
    assert all(len(a) < len(b) for a, b in pairwise(texts))
    assert {ident for _, ident in progress} == {threading.get_ident()}


def test_result_dict_shape(engine_env):
    result = diagnose(text=TEXT)
    d = result.to_dict()
    assert list(d) == ["label", "summary", "similar", "complete", "provider", "model", "cached", "elapsed_ms",
                       "first_token_ms", "hedged", "fallback", "tried", "usage", "raw", "demo"]
    assert d["demo"] is False  # a provider's answer; true only for the demo pack's examples
    assert d["label"] == {"code": 1, "name_ko": "기저세포암", "name_en": "Basal cell carcinoma", "score": 78.0,
                          "risk": "malignant"}
    assert [s["code"] for s in d["similar"]] == [11, 8]
    assert d["summary"].startswith("코 옆에") and d["complete"] is True
    assert (d["provider"], d["model"], d["cached"]) == ("runpod", RUNPOD_MODEL, False)
    assert d["usage"] == {"prompt_tokens": 120, "completion_tokens": 80}
    assert d["raw"] == VALID and d["elapsed_ms"] >= 0
    json.dumps(d, ensure_ascii=False)


def test_fenced_answer_with_prose_is_read(engine_env):
    engine_env.script(fenced(BENIGN))
    result = diagnose(text=TEXT)
    assert result.complete and result.label.lesion.code == 7 and result.label.score == 85


def test_connection_is_kept_alive_between_calls(engine_env):
    fake = engine_env
    diagnose(text=TEXT)
    diagnose(text=TEXT, use_cache=False)
    first, second = fake.chat_requests
    assert first.client == second.client  # the streamed answer ended cleanly, the connection was reused


# -- cache ----------------------------------------------------------------------------------

def test_second_identical_call_is_cached(engine_env):
    fake = engine_env
    first = diagnose(text=TEXT)
    second = diagnose(text=TEXT)
    assert not first.cached and second.cached
    assert len(fake.chat_requests) == 1
    assert second.raw == first.raw and second.label == first.label and second.usage == first.usage

    fresh = diagnose(text=TEXT, use_cache=False)
    assert not fresh.cached and len(fake.chat_requests) == 2

    diagnose(text=TEXT + " on the cheek")  # another case is another key
    assert len(fake.chat_requests) == 3
    diagnose(text=TEXT, provider="openai")  # another provider too
    assert len(fake.chat_requests) == 4


@pytest.mark.parametrize("answer", [TRUNCATED, REFUSAL], ids=["truncated", "refusal"])
def test_incomplete_answer_is_shown_but_not_cached(engine_env, answer):
    fake = engine_env
    fake.script(Reply(answer, finish_reason="length" if answer is TRUNCATED else "stop"))
    first = diagnose(text=TEXT)
    assert not first.complete and first.raw == answer and not first.cached
    if answer is REFUSAL:
        assert first.label is None
    second = diagnose(text=TEXT)
    assert len(fake.chat_requests) == 2
    assert second.complete and not second.cached


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [401, 403])
def test_rejected_key_is_not_retried_and_not_leaked(engine_env, status):
    fake = engine_env
    fake.script(Reply.error(status, f"Incorrect API key provided: {RUNPOD_KEY}"))
    with pytest.raises(ProviderAuthError) as caught:
        diagnose(text=TEXT)
    message = str(caught.value)
    assert "RUNPOD_API_KEY" in message and str(status) in message
    assert RUNPOD_KEY not in message and "rpa-" not in message
    assert caught.value.provider == "runpod" and not caught.value.retryable
    assert len(fake.chat_requests) == 1


def test_unknown_model_is_a_request_error_not_retried(engine_env):
    fake = engine_env
    fake.script(Reply.error(404))
    with pytest.raises(ProviderRequestError) as caught:
        diagnose(text=TEXT)
    assert RUNPOD_MODEL in str(caught.value) and "RUNPOD_MODEL_NAME" in str(caught.value)
    assert len(fake.chat_requests) == 1


def test_bad_request_is_not_retried(engine_env):
    fake = engine_env
    fake.script(Reply.error(400))
    with pytest.raises(ProviderRequestError):
        diagnose(text=TEXT)
    assert len(fake.chat_requests) == 1


@pytest.mark.parametrize("headers", [{"Retry-After": "0.3"}, {"retry-after-ms": "300"}])
def test_rate_limit_waits_as_asked_then_succeeds(engine_env, headers):
    fake = engine_env
    fake.script(Reply.error(429, headers=headers))
    result = diagnose(text=TEXT)
    assert result.complete
    first, second = fake.chat_requests
    assert second.at - first.at >= 0.3


@pytest.mark.parametrize("value", ["soon", "", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_unreadable_or_past_retry_after_is_not_a_crash(engine_env, value):
    fake = engine_env
    fake.script(Reply.error(429, headers={"Retry-After": value}))
    assert diagnose(text=TEXT).complete
    assert len(fake.chat_requests) == 2


def test_rate_limit_beyond_the_budget_is_not_waited_for(engine_env):
    fake = engine_env
    fake.script(Reply.error(429, headers={"Retry-After": "60"}))
    started = time.monotonic()
    with pytest.raises(ProviderRateLimited):
        diagnose(text=TEXT)
    assert time.monotonic() - started < 2
    assert len(fake.chat_requests) == 1


def test_server_error_is_retried_once(engine_env):
    fake = engine_env
    fake.script(Reply.error(500))
    assert diagnose(text=TEXT).complete
    assert len(fake.chat_requests) == 2


def test_one_retry_layer_only(engine_env):
    fake = engine_env
    fake.script(Reply.error(503), Reply.error(503), Reply.error(503))
    with pytest.raises(ProviderUnavailable) as caught:
        diagnose(text=TEXT)
    assert "503" in str(caught.value)
    assert len(fake.chat_requests) == 2  # LLM_MAX_RETRIES=1 and the SDK's own retries are off


def test_connection_refused_is_unavailable(engine_env, reconfigure):
    reconfigure(RUNPOD_BASE_URL=closed_port_url())
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        diagnose(text=TEXT)
    assert "RUNPOD_BASE_URL" in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert time.monotonic() - started < 5


def test_hanging_server_is_cut_off_at_the_budget(engine_env, reconfigure):
    fake = engine_env
    reconfigure(TEXT_BUDGET_SECONDS="1")
    fake.script(Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        diagnose(text=TEXT)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1 + 2  # a correctness bound, not a benchmark
    assert "1 s" in str(caught.value)
    assert len(fake.chat_requests) == 1


def test_slow_first_attempt_times_out_and_is_retried_within_the_budget(engine_env, reconfigure):
    fake = engine_env
    reconfigure(REQUEST_TIMEOUT="0.3", TEXT_BUDGET_SECONDS="5")
    fake.script(Reply(VALID, delay=2))
    started = time.monotonic()
    assert diagnose(text=TEXT).complete
    assert time.monotonic() - started < 2
    assert len(fake.chat_requests) == 2


@pytest.mark.parametrize("stream", ["true", "false"])
def test_answer_cut_mid_body_is_an_error_or_incomplete(engine_env, reconfigure, stream):
    fake = engine_env
    reconfigure(LLM_STREAM=stream)
    fake.script(Reply(VALID, cut_after=60), Reply(VALID, cut_after=60))
    try:
        result = diagnose(text=TEXT)
    except ProviderError as exc:
        assert isinstance(exc, ProviderUnavailable)
    else:
        assert not result.complete
    assert len(fake.chat_requests) == 2
    assert diagnose(text=TEXT).complete  # nothing partial was cached
    assert len(fake.chat_requests) == 3


def test_a_single_cut_is_retried(engine_env):
    fake = engine_env
    fake.script(Reply(VALID, cut_after=100, chunk_chars=10))
    progress: list[str] = []
    result = diagnose(text=TEXT, on_progress=progress.append)
    assert result.complete and result.raw == VALID
    assert len(fake.chat_requests) == 2


def test_failing_progress_callback_cancels_the_call(engine_env):
    fake = engine_env
    fake.script(Reply(VALID, chunk_chars=4, chunk_delay=0.05))

    def explode(_: str) -> None:
        raise RuntimeError("page rerun")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="page rerun"):
        diagnose(text=TEXT, on_progress=explode)
    assert time.monotonic() - started < 2
    assert diagnose(text=TEXT).cached is False  # nothing was cached by the cancelled call


# -- configuration and input ----------------------------------------------------------------

def test_unconfigured_provider_names_the_variables(engine_env, reconfigure):
    reconfigure(RUNPOD_API_KEY=None, RUNPOD_BASE_URL=None, RUNPOD_MODEL_NAME=None)
    with pytest.raises(ProviderNotConfigured) as caught:
        diagnose(text=TEXT, provider="runpod")
    message = str(caught.value)
    for name in ("RUNPOD_API_KEY", "RUNPOD_BASE_URL", "RUNPOD_MODEL_NAME"):
        assert name in message
    assert "OpenAI" in message  # says what is configured instead
    assert engine_env.requests == []


def test_default_falls_back_to_a_configured_provider(engine_env, reconfigure):
    reconfigure(RUNPOD_API_KEY=None)
    result = diagnose(text=TEXT)
    assert result.provider == "openai"
    assert only_request(engine_env).body["model"] == OPENAI_MODEL


def test_nothing_configured(engine_env, reconfigure):
    reconfigure(RUNPOD_API_KEY=None, OPENAI_API_KEY=None)
    with pytest.raises(ProviderNotConfigured) as caught:
        diagnose(text=TEXT)
    assert "RUNPOD_API_KEY" in str(caught.value)
    assert engine_env.requests == []


def test_unknown_provider_is_input_error(engine_env):
    with pytest.raises(InputError) as caught:
        diagnose(text=TEXT, provider="gemini")
    assert "gemini" in str(caught.value) and "runpod" in str(caught.value)
    assert engine_env.requests == []


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_neither_text_nor_photo_is_input_error(engine_env, text):
    with pytest.raises(InputError):
        diagnose(text=text)
    assert engine_env.requests == []


# -- concurrency ----------------------------------------------------------------------------

def test_concurrent_calls_get_their_own_answers(engine_env):
    fake = engine_env
    codes = [0, 1, 2, 3, 5, 6, 7, 8]

    def respond(request) -> Reply:
        i = int(request.text().split("case #")[1].split("<")[0])
        c = CLASSES[codes[i]]
        return Reply(xml_answer(c.code, 60 + i, c.name_ko, f"case {i} 소견"), chunk_chars=6, chunk_delay=0.002)

    fake.responder = respond
    barrier = threading.Barrier(len(codes))

    def call(i: int):
        barrier.wait()
        seen: list[str] = []
        result = diagnose(text=f"lesion case #{i}", on_progress=seen.append)
        return i, result, seen

    with ThreadPoolExecutor(len(codes)) as pool:
        outcomes = list(pool.map(call, range(len(codes))))
    for i, result, seen in outcomes:
        assert result.complete and not result.cached
        assert result.label.lesion.code == codes[i] and result.label.score == 60 + i
        assert result.answer.summary == f"case {i} 소견"
        assert all(result.raw.startswith(s) for s in seen)
    assert sorted(r.text() for r in fake.chat_requests) == sorted(
        f"<patient_description>lesion case #{i}</patient_description>" for i in range(len(codes)))


# -- the fake itself --------------------------------------------------------------------------

def test_fake_stops_promptly_with_a_hanging_client():
    fake = FakeLLM().start()
    fake.script(Reply(hang=True))

    def hang_on() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server went away, as it should
            httpx.post(fake.url + "/chat/completions", json={"model": "m", "messages": []}, timeout=10)

    client = threading.Thread(target=hang_on, daemon=True)
    client.start()
    fake.wait_for_requests(1)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2


def test_fake_runs_standalone():
    # A real process: `python -m testkit.fake_llm` is how a developer runs the fake on its own.
    proc = subprocess.Popen([sys.executable, "-m", "testkit.fake_llm", "--port", "0"], cwd=PROJECT_ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        reply = httpx.post(url + "/chat/completions", json={"model": "m", "messages": [
            {"role": "user", "content": "hi"}]}, timeout=5)
        assert reply.status_code == 200
        assert reply.json()["choices"][0]["message"]["content"] == VALID
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_a_password_in_a_base_url_never_reaches_a_message():
    # `host` names the endpoint in "cannot reach …" messages; it quoted the URL's `user:password@` as well.
    from providers.registry import build_providers
    from utils.settings import load_settings

    settings = load_settings(env={"OPENAI_API_KEY": "sk-test", "LOCAL_BASE_URL": "http://local-model:11434/v1",
                                  "OPENAI_BASE_URL": "https://proxy-user:s3cret-pw@proxy.clinic:8443/v1"})
    providers = build_providers(settings)
    assert providers["openai"].host == "proxy.clinic:8443"
    assert providers["local"].host == "local-model:11434"
