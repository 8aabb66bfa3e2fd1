"""The engine's messages are ids with values: English for the command line and the API, the UI's language on pages.

Every id has a Korean and an English text with the same placeholders; every error the app raises on
purpose names an id (a source scan fails on a new bare-string raise); the pages say the errors in the
chosen language, a failed job's too, however long after it failed.
"""

from __future__ import annotations

import ast
import re
import string
import time
from pathlib import Path
from unittest import mock

import pytest
from streamlit.testing.v1 import AppTest

import providers
from domain.errors import DiagnosisError, InputError, ProviderTimeout
from domain.jobs import JobStoreUnavailable, JobUnreadable
from domain.messages import ENGLISH, ENGLISH_WORDS, LIST_PARAMS, WORD_PARAMS, Message
from storage.jobs import stored_message
from storage.schema import jobs
from testkit.answers import VALID
from testkit.fake_llm import Reply
from tests.conftest import PROJECT_ROOT, RUNPOD_MODEL
from tests.page_text import alerts
from ui import i18n
from ui.messages import ERROR_KINDS, LANGUAGES
from utils.images import IMAGE_FORMATS, ImageRejected, shrink_image

APP = str(PROJECT_ROOT / "main.py")
QA_PAGE = PROJECT_ROOT / "pages" / "qa.py"
QA_SCRIPT = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({str(QA_PAGE)!r}, run_name="__main__")
"""

# The errors whose raise sites must name a message id, and the packages they are raised in.
MESSAGE_ERRORS = {"DiagnosisError", "InputError", "ProviderError", "ProviderNotConfigured", "ProviderAuthError",
                  "ProviderRequestError", "ProviderRateLimited", "ProviderTimeout", "ProviderUnavailable",
                  "ImageRejected"}
PACKAGES = ("domain", "providers", "storage", "utils", "web", "commands")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _in(language: str, make):
    """What `make()` returns with the UI set to `language`."""
    with mock.patch.object(i18n, "lang", lambda: language):
        return make()


# -- the catalogue -----------------------------------------------------------------------------

@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_id_has_a_text_in_each_language_with_the_english_placeholders(language):
    tables = LANGUAGES[language]
    assert set(tables.templates) == set(ENGLISH)
    for code, english in ENGLISH.items():
        assert tables.templates[code].strip(), code
        assert _placeholders(tables.templates[code]) == _placeholders(english), code
    assert set(tables.words) == set(ENGLISH_WORDS)
    assert all(tables.words.values())
    assert _placeholders(tables.also) == {"first", "others"}


def test_the_korean_texts_are_korean():
    hangul = re.compile("[가-힣]")
    assert all(hangul.search(text) for text in LANGUAGES["ko"].templates.values())
    assert all(hangul.search(word) or word == "PDF" for word in LANGUAGES["ko"].words.values())


def test_word_and_list_parameters_are_translated_not_pasted():
    message = Message("input.field_too_long", {"field": "body_site", "chars": 1234, "limit": 200})
    assert str(message) == "The body site has 1,234 characters; the limit is 200. Please shorten it."
    korean = _in("ko", lambda: i18n.message_text(message))
    assert korean.startswith("부위 항목이 1,234자입니다") and "body site" not in korean
    missing = Message("provider.not_configured", {"title": "OpenAI", "variables": "OPENAI_API_KEY, OPENAI_MODEL"})
    assert str(missing) == "OpenAI is not configured: set OPENAI_API_KEY and OPENAI_MODEL in .env."
    korean = _in("ko", lambda: i18n.message_text(missing))
    assert "OPENAI_API_KEY, OPENAI_MODEL" in korean and " and " not in korean and ".env" in korean
    assert set(WORD_PARAMS.values()) == {key.split(".")[0] for key in ENGLISH_WORDS}
    assert {name for t in ENGLISH.values() for name in _placeholders(t)} >= LIST_PARAMS


def test_a_message_survives_its_stored_record():
    message = Message("provider.failed", {"title": "RunPod", "status": 503},
                      also=(Message("routing.over_budget", {"budget": 15.0, "titles": "RunPod, OpenAI"}),))
    assert Message.from_record(message.record()) == message
    assert str(message) == ("RunPod failed on its side (HTTP 503). Also: No answer within the 15 s time budget "
                            "(tried RunPod, OpenAI).")
    assert stored_message(None) is None and stored_message("{not json") is None


# -- the raise sites ---------------------------------------------------------------------------

def _bare_raises(root: Path = PROJECT_ROOT) -> list[str]:
    """`X("...")` / `X(f"...")` of a message error with a string (not an id) as its message, in the app's packages."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name in MESSAGE_ERRORS and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    if name == "ImageRejected" and isinstance(node.args[0], ast.Constant) \
                            and node.args[0].value in ENGLISH:
                        continue  # ImageRejected takes its id as its first argument
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_every_error_the_app_raises_names_a_message_id():
    assert _bare_raises() == []


def test_the_scan_finds_a_bare_string_raise(tmp_path):
    # The scan above must be able to fail: plain-string messages are found, ids are not.
    (tmp_path / "providers").mkdir()
    (tmp_path / "providers" / "probe.py").write_text(
        'def f(n):\n'
        '    if n:\n'
        '        raise InputError(f"no {n}")\n'
        '    if n is None:\n'
        '        return errors.ProviderTimeout("slow", provider="x")\n'
        '    raise ImageRejected("image.empty")\n'
        'def g():\n'
        '    raise InputError(Message("input.empty"))\n', encoding="utf-8")
    assert _bare_raises(tmp_path) == ["providers/probe.py:3", "providers/probe.py:5"]


def test_every_image_refusal_names_an_id_with_the_same_english_text():
    cases = [b"", b"GIF89a" + b"\0" * 64, b"%PDF-1.4" + b"\0" * 64, b"not a photo at all", b"\xff\xd8\xff" + b"\0" * 9]
    for data in cases:
        with pytest.raises(ImageRejected) as refused:
            shrink_image(data)
        exc = refused.value
        assert exc.code in ENGLISH and str(Message(exc.code, exc.params)) == str(exc)
        assert "format" not in exc.params or exc.params["format"] in IMAGE_FORMATS
        korean = _in("ko", lambda exc=exc: i18n.error_text(exc))
        assert korean != str(exc) and re.search("[가-힣]", korean)


def test_the_engine_keeps_the_image_refusal_id(engine_env):
    with pytest.raises(InputError) as refused:
        providers.get_engine().prepare_image(b"GIF89a" + b"\0" * 64)
    assert refused.value.code == "image.other_format" and refused.value.params == {"format": "gif"}
    assert str(refused.value) == ("This file is a GIF image, not a photo the app can read (JPEG, PNG, WebP, HEIC). "
                                  "Please save the photo as JPEG and choose it again.")
    assert "GIF 이미지" in _in("ko", lambda: i18n.error_text(refused.value))


# -- error_text --------------------------------------------------------------------------------

def test_error_text_says_the_budget_timeout_in_the_chosen_language():
    exc = ProviderTimeout(Message("routing.over_budget", {"budget": 15.0, "titles": "RunPod"}), provider="runpod")
    assert str(exc) == "No answer within the 15 s time budget (tried RunPod)."
    assert exc.code == "routing.over_budget" and exc.params == {"budget": 15.0, "titles": "RunPod"}
    korean = "제한 시간 15초 안에 답변을 받지 못했습니다 (시도한 제공자: RunPod)."
    assert _in("ko", lambda: i18n.error_text(exc)) == korean
    assert _in("en", lambda: i18n.error_text(exc)) == str(exc)


def test_error_text_never_shows_nothing():
    assert _in("ko", lambda: i18n.error_text(ValueError("plain words"))) == "plain words"
    assert _in("ko", lambda: i18n.error_text(DiagnosisError("from outside the app"))) == "from outside the app"
    unknown = DiagnosisError(Message("provider.timeout", {"title": "RunPod"}))
    newer = Message("from.a.newer.release", {"x": 1})
    assert _in("ko", lambda: i18n.message_text(newer, "stored English")) == "stored English"
    assert _in("ko", lambda: i18n.message_text(newer)) == "from.a.newer.release"
    assert _in("ko", lambda: i18n.error_text(unknown)) == "RunPod이(가) 제시간에 답변하지 않았습니다."
    assert _in("ko", lambda: i18n.error_text(JobUnreadable())).startswith("이 작업은 다른 DATA_ENCRYPTION_KEY")
    assert "데이터베이스" in _in("ko", lambda: i18n.error_text(JobStoreUnavailable("database")))
    assert set(ERROR_KINDS) >= {"ProviderTimeout", "ProviderAuthError", "ProviderUnavailable"}
    assert _in("ko", lambda: i18n.error_kind("ProviderTimeout")) == "제한 시간 안에 답변 없음"
    assert _in("ko", lambda: i18n.error_kind("SomethingElse")) == "SomethingElse"


def test_several_failures_are_said_together_in_one_language(engine_env, reconfigure):
    reconfigure(SKIN_DIAGNOSIS_PROVIDER="runpod", PROVIDER_FALLBACKS="openai", LLM_MAX_RETRIES="0")
    engine_env.responder = lambda request: {RUNPOD_MODEL: Reply.error(503)}.get(request.body["model"],
                                                                                Reply.error(500))
    with pytest.raises(providers.ProviderError) as failed:
        providers.diagnose(text="pearly papule")
    exc = failed.value
    assert str(exc) == "RunPod failed on its side (HTTP 503). Also: OpenAI failed on its side (HTTP 500)."
    assert _in("ko", lambda: i18n.error_text(exc)) == ("RunPod 쪽에서 오류가 났습니다 (HTTP 503). 그 밖에: "
                                                      "OpenAI 쪽에서 오류가 났습니다 (HTTP 500).")


# -- pages -------------------------------------------------------------------------------------

def test_the_korean_qa_page_says_a_timeout_in_korean(engine_env, reconfigure):
    reconfigure(TEXT_BUDGET_SECONDS="0.5", LLM_MAX_RETRIES="0")
    engine_env.responder = lambda request: Reply(VALID, delay=3)
    at = AppTest.from_string(QA_SCRIPT, default_timeout=30)
    at.session_state["lang"] = "ko"
    at.run()
    at.text_area(key="qa_text").input("pearly papule beside the nose").run()
    at = at.button(key="qa_run").click().run()
    assert not at.exception
    shown = alerts(at, "error")
    timeouts = [m for m in shown if "제한 시간 0.5초 안에" in m]
    assert len(timeouts) == 2, shown  # one per provider compared (RunPod and OpenAI)
    assert not any("time budget" in m or "did not answer" in m for m in shown), shown


def _failed_job(engine_env) -> str:
    engine_env.script(Reply.error(503), Reply.error(503))
    engine = providers.get_engine()
    job_id = engine.jobs.submit(engine.make_request("ulcerated nodule"))
    deadline = time.monotonic() + 10
    while not engine.jobs.get(job_id).finished:
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.02)
    return job_id


@pytest.mark.parametrize(("language", "expected"), [("ko", "RunPod 쪽에서 오류가 났습니다 (HTTP 503)."),
                                                    ("en", "RunPod failed on its side (HTTP 503).")])
def test_the_jobs_page_says_a_failed_jobs_error_in_the_readers_language(engine_env, language, expected):
    job_id = _failed_job(engine_env)
    job = providers.get_engine().jobs.get(job_id)
    assert job.error == "RunPod failed on its side (HTTP 503)."  # the API and the command line read English
    assert job.error_message == Message("provider.failed", {"title": "RunPod", "status": 503})
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["lang"] = language
    at.run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert alerts(at, "error") == [expected]


def test_a_job_stored_without_a_message_id_shows_its_text(engine_env):
    # Jobs that failed before migration 0010 have only their English text: the page shows that, never nothing.
    job_id = _failed_job(engine_env)
    store = providers.get_engine().store
    with store.connect() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(error_message=None))
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("pages/jobs.py").run()
    assert alerts(at, "error") == ["RunPod failed on its side (HTTP 503)."]


def test_the_diagnose_page_says_an_input_error_in_korean(engine_env):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.button(key="assess").click().run()
    (message,) = alerts(at, "error")
    assert message.startswith("병변 사진을 올리거나 글로 설명하세요") and "Give a photo" not in message


def test_the_english_ui_and_the_cli_keep_the_english_text(engine_env):
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["lang"] = "en"
    at.run()
    at.button(key="assess").click().run()
    (message,) = alerts(at, "error")
    assert message.startswith("Give a photo of the lesion or describe it in text (either is enough).")
    with pytest.raises(InputError) as refused:
        providers.diagnose(text="")
    assert str(refused.value) == "Give a photo of the lesion or describe it in text (either is enough)."

