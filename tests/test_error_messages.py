"""The engine's messages are ids with values: English for the command line and the API, the UI's language on pages.

Every id has a Korean and an English text with the same placeholders; every error the app raises on
purpose names an id (a source scan fails on a new bare-string raise); the pages say the errors in the
chosen language, a failed job's too, however long after it failed.
"""

from __future__ import annotations

import ast
import io
import re
import string
import time
import warnings
import zipfile
from pathlib import Path
from unittest import mock

import pytest
from streamlit.testing.v1 import AppTest

import startup
from domain.errors import DiagnosisError, InputError, ProviderError, ProviderTimeout
from domain.jobs import JobStoreUnavailable, JobUnreadable
from domain.locales import TABLES
from domain.messages import ENGLISH, LIST_PARAMS, WORD_PARAMS, Message, Refusal
from qa.batch import check_providers
from qa.batch_input import BatchInputError, photos_from_dir, photos_from_zip, read_cases
from qa.report import read_results
from storage.jobs import stored_message
from storage.reviews import Reviews
from storage.schema import jobs
from testkit.answers import VALID
from testkit.fake_llm import Reply
from testkit.limits import MAX_CASES, PHOTO_LIMIT
from tests.conftest import PROJECT_ROOT, RUNPOD_MODEL
from tests.page_text import alerts, shown
from ui import i18n
from utils.images import IMAGE_FORMATS, ImageRejected, shrink_image

APP = str(PROJECT_ROOT / "main.py")
QA_PAGE = PROJECT_ROOT / "app_pages" / "qa.py"
QA_SCRIPT = f"""
import runpy
from ui.state import init_state
init_state()
runpy.run_path({str(QA_PAGE)!r}, run_name="__main__")
"""

# The errors whose raise sites must name a message id, and the packages they are raised in.
MESSAGE_ERRORS = {"DiagnosisError", "InputError", "ProviderError", "ProviderNotConfigured", "ProviderAuthError",
                  "ProviderRequestError", "ProviderRateLimited", "ProviderTimeout", "ProviderUnavailable",
                  "ImageRejected", "Refusal", "BatchInputError", "ReviewRefused"}
PACKAGES = ("domain", "providers", "engine", "qa", "storage", "utils", "web", "commands")
# Modules whose refusals reach the QA page: there a plain ValueError("...") would be English on a Korean page too.
REFUSING_MODULES = ("qa/batch_input.py", "qa/batch.py", "qa/report.py", "storage/reviews.py")
# qa_report's own ValueErrors never leave it: a results line that cannot be read back is asked again (logged).
INTERNAL_VALUE_ERRORS = {"the results log is closed", "unknown class code {}"}


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _in(language: str, make, *, admin: bool = True):
    """What `make()` returns with the UI set to `language`, for an administrator (or, `admin=False`, a clinician)."""
    with mock.patch.object(i18n, "lang", lambda: language), mock.patch.object(i18n, "technical", lambda: admin):
        return make()


# -- the catalogue -----------------------------------------------------------------------------

def _words(table) -> dict[str, str]:
    """A table's words for word parameters ("word.field.body_site": "body site")."""
    return {key: text for key, text in table.items() if key.startswith("word.")}


@pytest.mark.parametrize("language", sorted(TABLES))
def test_every_id_has_a_text_in_each_language_with_the_english_placeholders(language):
    table = TABLES[language]
    for code, english in ENGLISH.items():
        assert table[code].strip(), code
        assert _placeholders(table[code]) == _placeholders(english), code
    assert set(_words(table)) == set(_words(TABLES["en"]))
    assert all(_words(table).values())
    assert _placeholders(table["message.also"]) == {"first", "others"}


def test_the_korean_texts_are_korean():
    hangul = re.compile("[가-힣]")
    assert all(hangul.search(TABLES["ko"][code]) for code in ENGLISH)
    assert all(hangul.search(word) or word == "PDF" for word in _words(TABLES["ko"]).values())


def test_word_and_list_parameters_are_translated_not_pasted():
    message = Message("input.field_too_long", {"field": "body_site", "chars": 1234, "limit": 200})
    assert str(message) == "The body site has 1,234 characters; the limit is 200. Please shorten it."
    korean = _in("ko", lambda: i18n.message_text(message))
    assert korean.startswith("부위 항목이 1,234자입니다") and "body site" not in korean
    missing = Message("provider.not_configured", {"title": "OpenAI", "variables": "OPENAI_API_KEY, OPENAI_MODEL"})
    assert str(missing) == "OpenAI is not configured: set OPENAI_API_KEY and OPENAI_MODEL in .env."
    korean = _in("ko", lambda: i18n.message_text(missing))
    assert "OPENAI_API_KEY, OPENAI_MODEL" in korean and " and " not in korean and ".env" in korean
    # A clinician is told the same in plain words: no variable, no .env.
    plain = _in("ko", lambda: i18n.message_text(missing), admin=False)
    assert plain == "OpenAI이(가) 설정되지 않았습니다. 관리자에게 문의하세요."
    assert set(WORD_PARAMS.values()) == {key.split(".")[1] for key in _words(TABLES["en"])}
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
                refusing = path.relative_to(root).as_posix() in REFUSING_MODULES and name == "ValueError" \
                    and _text(node.args[0]) not in INTERNAL_VALUE_ERRORS
                if (name in MESSAGE_ERRORS or refusing) \
                        and isinstance(node.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp)):
                    if name == "ImageRejected" and isinstance(node.args[0], ast.Constant) \
                            and node.args[0].value in ENGLISH:
                        continue  # ImageRejected takes its id as its first argument
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def _text(node: ast.expr) -> str:
    """A string literal's text, an f-string's with {} for each value ('' for anything else)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(v) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    return ""


def test_every_error_the_app_raises_names_a_message_id():
    assert _bare_raises() == []


def test_the_scan_reaches_the_batch_and_review_refusals():
    # Not vacuous: each module the QA page hears from raises its refusals with ids, which the scan walks past.
    for module in REFUSING_MODULES:
        source = (PROJECT_ROOT / module).read_text(encoding="utf-8")
        assert re.search(r"raise (BatchInputError|ReviewRefused)\((Message\(|other\)|provider\.not_configured)",
                         source), module


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
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "reviews.py").write_text(
        'def add(v):\n'
        '    if v:\n'
        '        raise ValueError(f"Unknown verdict {v}")\n'
        '    raise ReviewRefused(Message("review.unknown_verdict", {"verdict": v, "choices": "a"}))\n',
        encoding="utf-8")
    (tmp_path / "storage" / "other.py").write_text('raise ValueError("elsewhere a ValueError is no message")\n',
                                                   encoding="utf-8")
    assert _bare_raises(tmp_path) == ["providers/probe.py:3", "providers/probe.py:5", "storage/reviews.py:3"]


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
        startup.get_engine().prepare_image(b"GIF89a" + b"\0" * 64)
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
    assert "KEY" not in _in("ko", lambda: i18n.error_text(JobUnreadable()), admin=False)
    assert "데이터베이스" in _in("ko", lambda: i18n.error_text(JobStoreUnavailable("database")))
    assert set(TABLES["ko"]) >= {f"error_kind.{name}" for name in ("ProviderTimeout", "ProviderAuthError",
                                                                     "ProviderUnavailable")}
    assert _in("ko", lambda: i18n.error_kind("ProviderTimeout")) == "제한 시간 안에 답변 없음"
    assert _in("ko", lambda: i18n.error_kind("SomethingElse")) == "SomethingElse"


def test_several_failures_are_said_together_in_one_language(engine_env, reconfigure):
    reconfigure(SKIN_DIAGNOSIS_PROVIDER="runpod", PROVIDER_FALLBACKS="openai", LLM_MAX_RETRIES="0")
    engine_env.responder = lambda request: {RUNPOD_MODEL: Reply.error(503)}.get(request.body["model"],
                                                                                Reply.error(500))
    with pytest.raises(ProviderError) as failed:
        startup.diagnose(text="pearly papule")
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
    engine = startup.get_engine()
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
    job = startup.get_engine().jobs.get(job_id)
    assert job.error == "RunPod failed on its side (HTTP 503)."  # the API and the command line read English
    assert job.error_message == Message("provider.failed", {"title": "RunPod", "status": 503})
    at = AppTest.from_file(APP, default_timeout=20)
    at.session_state["lang"] = language
    at.run()
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception
    assert alerts(at, "error") == [expected]


def test_a_job_stored_without_a_message_id_shows_its_text(engine_env):
    # Jobs that failed before migration 0010 have only their English text: the page shows that, never nothing.
    job_id = _failed_job(engine_env)
    store = startup.get_engine().store
    with store.connect() as conn:
        conn.execute(jobs.update().where(jobs.c.id == job_id).values(error_message=None))
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.switch_page("app_pages/jobs.py").run()
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
        startup.diagnose(text="")
    assert str(refused.value) == "Give a photo of the lesion or describe it in text (either is enough)."



# -- batch QA and reviews ----------------------------------------------------------------------

def _zip(files: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name these tests want
        for name, data in files:
            archive.writestr(name, data)
    return out.getvalue()


def _refusal(make) -> Refusal:
    with pytest.raises(ValueError) as refused:
        make()
    assert isinstance(refused.value, Refusal) and refused.value.code in ENGLISH
    return refused.value


BATCH_REFUSALS = [
    (lambda: read_cases(b"id,text\n1,papule\n", limit=MAX_CASES),
     "The cases file lacks the columns image, expected: the header must be id,text,image,expected "
     "(found: id, text).", "image, expected 열이 없습니다"),
    (lambda: read_cases(b"\n\n", limit=MAX_CASES),
     "The cases file lacks the columns id, text, image, expected: the header must be id,text,image,expected "
     "(found: nothing).", "첫 줄이 비어 있음"),
    (lambda: read_cases(b"\xff\xfe\x00\x81\x00", limit=MAX_CASES),
     "The cases file is neither UTF-8 nor CP949 text: save it as 'CSV UTF-8'.", "UTF-8도 CP949도 아닙니다"),
    (lambda: read_cases("id,text,image,expected\n1," + "x" * 200_000 + ",,\n", limit=5),
     "The cases file is not valid CSV at line 2: field larger than field limit (131072).",
     "2번째 줄이 올바른 CSV가 아닙니다: field larger than field limit (131072)."),  # the parser's words as written
    (lambda: read_cases(b"id,text,image,expected\n1,a,,\n2,b,,\n3,c,,\n", limit=2),
     "The cases file has 3 cases; the limit is 2 (BATCH_MAX_CASES). Split it into smaller batches, or raise the "
     "limit (command line: --max-cases 3).", "--max-cases 3"),
    (lambda: photos_from_zip(_zip([("a.jpg", b"1"), ("a.jpg", b"2")]), max_entry_bytes=PHOTO_LIMIT),
     "The photo archive holds two files named 'a.jpg': rename or remove one and zip the photos again.",
     "'a.jpg'인 파일이 두 개"),
    (lambda: photos_from_zip(b"not a zip", max_entry_bytes=PHOTO_LIMIT),
     "The photo archive is not a readable ZIP file (File is not a zip file).", "(File is not a zip file)"),
    (lambda: photos_from_dir("/no/such/folder", max_photo_bytes=PHOTO_LIMIT),
     "The photo directory /no/such/folder does not exist or is not a directory.", "/no/such/folder"),
]


@pytest.mark.parametrize(("make", "english", "korean"), BATCH_REFUSALS)
def test_batch_refusals_keep_their_english_and_are_said_in_korean(make, english, korean):
    exc = _refusal(make)
    assert isinstance(exc, BatchInputError) and str(exc) == english  # what `cli.py batch` prints
    said = _in("ko", lambda: i18n.error_text(exc))
    assert korean in said and re.search("[가-힣]", said) and said != english
    assert _in("en", lambda: i18n.error_text(exc)) == english


def test_provider_choice_and_resume_refusals_name_ids(engine_env, tmp_path):
    engine = startup.get_engine()
    exc = _refusal(lambda: check_providers(engine, ["runpod", "nope"]))
    assert str(exc) == "Unknown provider 'nope': choose among runpod, openai, local."
    assert _in("ko", lambda: i18n.error_text(exc)) == ("알 수 없는 제공자 'nope'입니다. 다음 중에서 고르세요: "
                                                      "runpod, openai, local.")
    local = engine.providers["local"]
    assert not local.configured
    exc = _refusal(lambda: check_providers(engine, ["local"]))
    assert exc.message == local.not_configured()  # the engine's own message for a provider not set up
    assert str(exc) == f"{local.title} is not configured: {local.setup_hint()}."
    assert _in("ko", lambda: i18n.error_text(exc)).startswith(f"{local.title}이(가) 설정되지 않았습니다")
    results = tmp_path / "results.csv"
    results.write_text("a,b\n1,2\n", encoding="utf-8")
    exc = _refusal(lambda: read_results(results, read_cases(b"id,text,image,expected\n1,a,,\n", limit=MAX_CASES),
                                        ["runpod"]))
    assert str(exc) == (f"{results} is not a results.csv this tool wrote (its header differs): choose another "
                        "output folder, or run without --resume.")
    assert _in("ko", lambda: i18n.error_text(exc)).startswith(f"{results}은(는) 이 도구가 쓴 results.csv가 아닙니다")


def test_row_problems_keep_their_english_and_carry_ids():
    (case,) = read_cases(b"id,text,image,expected\nx,,gone.jpg,99\n", {"a.jpg": b"1"}, limit=MAX_CASES)
    assert case.problem == ("line 2 (id x): unknown image file 'gone.jpg': it is not among the 1 photo given; "
                            "bad expected value '99': use a class code from 0 to 14 (or leave it empty)")
    assert [m.code for m in case.problem_messages] == ["batch.row_unknown_image_one", "batch.row_bad_expected"]
    korean = _in("ko", lambda: [i18n.message_text(m) for m in case.problem_messages])
    assert korean == ["알 수 없는 사진 파일 'gone.jpg': 받은 사진 1장 중에 없습니다",
                      "잘못된 expected 값 '99': 0부터 14까지의 분류 코드를 쓰세요 (비워도 됩니다)"]


def test_review_refusals_are_value_errors_with_ids(engine_env):
    reviews = Reviews(startup.get_engine().store)
    exc = _refusal(lambda: reviews.add("x", "maybe"))
    assert str(exc) == "Unknown verdict 'maybe': use one of correct, incorrect."
    exc = _refusal(lambda: reviews.add("x", "correct", expected_code="3"))
    assert str(exc) == "Unknown expected class '3': use a class code from 0 to 14."
    exc = _refusal(lambda: reviews.add("no-such-assessment", "correct"))
    assert str(exc) == "Assessment no-such-assessment is not in the history: it cannot be reviewed."
    assert _in("ko", lambda: i18n.error_text(exc)) == "평가 no-such-assessment이(가) 기록에 없어 리뷰할 수 없습니다."


def _batch_tab(cases: bytes, photos: bytes | None = None) -> AppTest:
    """The Korean QA page with `cases` (and `photos`) uploaded on its Batch tab."""
    at = AppTest.from_string(QA_SCRIPT, default_timeout=30)
    at.session_state["lang"] = "ko"
    at.run()
    at.file_uploader(key="batch_csv").set_value(("cases.csv", cases, "text/csv"))
    if photos is not None:
        at.file_uploader(key="batch_zip").set_value(("photos.zip", photos, "application/zip"))
    return at.run()


@pytest.mark.parametrize(("cases", "korean"), [
    (b"id,text\n1,papule\n", "사례 파일에 image, expected 열이 없습니다. 머리글은 id,text,image,expected여야 합니다 "
                             "(파일의 머리글: id, text)."),
    (b"\xff\xfe\x00\x81\x00", "사례 파일이 UTF-8도 CP949도 아닙니다. 'CSV UTF-8' 형식으로 저장하세요."),
])
def test_the_korean_batch_tab_says_a_bad_cases_file_in_korean(engine_env, cases, korean):
    at = _batch_tab(cases)
    assert not at.exception
    assert alerts(at, "error") == [korean]
    assert "cases file" not in shown(at) and at.button(key="batch_run").disabled


def test_the_korean_batch_tab_says_a_zip_with_two_photos_of_one_name_in_korean(engine_env):
    at = _batch_tab(b"id,text,image,expected\na,papule,,\n", _zip([("p/a.jpg", b"1"), ("p/a.jpg", b"2")]))
    at.checkbox(key="batch_confirm").check().run()
    at.button(key="batch_run").click().run()
    assert not at.exception and engine_env.requests == []
    assert alerts(at, "error") == ["사진 ZIP에 이름이 'p/a.jpg'인 파일이 두 개 있습니다. 하나의 이름을 바꾸거나 "
                                   "지운 뒤 다시 압축하세요."]
    at.session_state["lang"] = "en"  # the refusal is kept as an id: said again in the language now chosen
    at.run()
    assert alerts(at, "error") == ["The photo archive holds two files named 'p/a.jpg': rename or remove one and zip "
                                   "the photos again."]


def test_the_korean_review_form_says_a_refused_review_in_korean(engine_env):
    at = AppTest.from_string(QA_SCRIPT, default_timeout=30)
    at.session_state["lang"] = "ko"
    at.run()
    at.text_area(key="qa_text").input("pearly papule beside the nose").run()
    at = at.button(key="qa_run").click().run()
    aid = at.session_state["qa_results"]["results"]["runpod"].assessment_id
    startup.get_engine().history.delete(aid)  # deleted on the History page while the reviewer was typing
    at.radio(key=f"qa_verdict_{aid}").set_value("correct").run()
    at = at.button(key=f"qa_save_{aid}").click().run()
    assert not at.exception
    assert f"평가 {aid}이(가) 기록에 없어 리뷰할 수 없습니다." in alerts(at, "warning")
    assert "not in the history" not in shown(at)
