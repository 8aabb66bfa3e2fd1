"""Batch QA: the core against the local chat-completions server, the report files, the CLI and the panel.

The fake server answers by model: RunPod always says basal cell carcinoma (code 1); OpenAI says
seborrheic keratosis (code 7) for a photo or a text marked [seb], code 1 otherwise, and fails
(HTTP 400) on a text marked [boom]. With the cases below every figure is known exactly:

    id    expected  runpod  openai
    a     1         1 ✓     7 ✗      [seb]
    b     7         1 ✗     7 ✓      [seb]
    c     1         1 ✓     1 ✓
    d     7         1 ✗     7 ✓      photo
    e     0         1 ✗     1 ✗
    g     —         1       fails    [boom]
    bad   1         unknown photo: not run
    f     99        bad expected: not run

runpod 2/5 = 40.0%, openai 3/5 = 60.0%, agreement on c and e: 2/5 = 40.0%.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from streamlit.testing.v1 import AppTest

import cli
import startup
from qa.batch import run_batch
from qa.batch_input import BatchInputError, find_photo, photos_from_dir, photos_from_zip, read_cases
from qa.report import RESULT_COLUMNS, read_results, render_html, write_report
from storage.schema import assessments
from testkit.answers import xml_answer
from testkit.fake_llm import RecordedRequest, Reply
from testkit.limits import MAX_CASES, PHOTO_LIMIT
from tests.cli_runs import run_cli
from tests.conftest import OPENAI_MODEL, RUNPOD_MODEL

CLI = str(Path(__file__).resolve().parent.parent / "cli.py")

BCC = xml_answer(1, 80, "기저세포암", "진주양 구진.", [(11, 10, "피지샘증식증")])
SK = xml_answer(7, 85, "지루각화증", "붙여 놓은 듯한 갈색 병변.", [(14, 9, "흑색점")])

CASES = """id,text,image,expected
a,pearly papule with a waxy look [seb],,1
b,stuck-on brown plaque [seb],,7
c,pearly nodule beside the nose,,1
d,,lesion.jpg,7
e,rough scaly patch <script>alert(1)</script>,,0
g,no ground truth here [boom],,
bad,papule on the back,missing.jpg,1
f,red papule,,99
"""


def _has_image(request: RecordedRequest) -> bool:
    for message in (request.body or {}).get("messages", []):
        content = message.get("content")
        if isinstance(content, list) and any(part.get("type") == "image_url" for part in content):
            return True
    return False


def responder(request: RecordedRequest) -> Reply:
    """Each provider's own habit, so that accuracy, confusion and agreement are known exactly."""
    if request.body["model"] == RUNPOD_MODEL:
        return Reply(BCC)
    text = request.text()
    if "[boom]" in text:
        return Reply.error(400)
    return Reply(SK if "[seb]" in text or _has_image(request) else BCC)


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (150, 90, 80)).save(out, "JPEG", quality=85)
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.fixture
def llm(engine_env):
    engine_env.responder = responder
    return engine_env


@pytest.fixture
def photo_zip() -> bytes:
    # Zipping a folder puts the photo under the folder's name; the CSV names only the file.
    return _zip({"photos/lesion.jpg": _jpeg(), "__MACOSX/photos/._lesion.jpg": b"junk"})


def test_figures_are_exact(llm, photo_zip):
    photos = photos_from_zip(photo_zip, max_entry_bytes=PHOTO_LIMIT)
    assert list(photos) == ["photos/lesion.jpg"]
    engine = startup.get_engine()
    seen = []
    report = run_batch(engine, read_cases(CASES.encode(), photos, limit=MAX_CASES), photos, ["runpod", "openai"],
                       concurrency=3, on_progress=lambda done, total, row: seen.append((done, total)))
    assert seen == [(i, 16) for i in range(1, 17)]
    assert len(report.rows) == 16 and [r.case.id for r in report.rows[:4]] == ["a", "a", "b", "b"]
    # Six valid cases on two providers; OpenAI's 400 is not retried, and nothing falls back.
    assert len(llm.chat_requests) == 12
    assert sum(1 for r in llm.chat_requests if _has_image(r)) == 2

    acc = {a.provider: a for a in report.accuracy()}
    assert (acc["runpod"].correct, acc["runpod"].n, acc["runpod"].failed) == (2, 5, 2)
    assert (acc["openai"].correct, acc["openai"].n, acc["openai"].failed) == (3, 5, 3)
    assert acc["runpod"].model == RUNPOD_MODEL and acc["openai"].model == OPENAI_MODEL

    runpod = report.confusion("runpod")
    assert [c.code for c in runpod.expected] == [0, 1, 7] and [c.code for c in runpod.predicted] == [1]
    assert runpod.counts == {(1, 1): 2, (7, 1): 2, (0, 1): 1}
    openai = report.confusion("openai")
    assert [c.code for c in openai.predicted] == [1, 7]
    assert openai.counts == {(1, 7): 1, (7, 7): 2, (1, 1): 1, (0, 1): 1}

    [pair] = report.agreement()
    assert (pair.first, pair.second, pair.same, pair.n) == ("runpod", "openai", 2, 5)

    failures = report.failures()
    assert [(f.case_id, f.provider) for f in failures] == [("bad", None), ("f", None), ("g", "openai")]
    assert "unknown image file 'missing.jpg'" in failures[0].message and "line 8" in failures[0].message
    assert "bad expected value '99'" in failures[1].message
    assert failures[2].message.startswith("ProviderRequestError")
    assert not report.every_call_failed

    latency = {s.provider: s for s in report.latency()}
    assert latency["runpod"].n == 6 and latency["openai"].n == 5
    assert 0 < latency["runpod"].p50 <= latency["runpod"].p95 <= latency["runpod"].p99

    # History: every answer recorded as a batch answer, one qa_case per case shared by both providers.
    a = assessments.c
    with engine.store.connect() as conn:
        rows = conn.execute(sa.select(a.source, a.qa_case, a.provider, a.error)).mappings().all()
    assert len(rows) == 12 and {r["source"] for r in rows} == {"batch"}
    groups = {}
    for r in rows:
        groups.setdefault(r["qa_case"], set()).add(r["provider"])
    assert len(groups) == 6 and all(v == {"runpod", "openai"} for v in groups.values())
    assert all(key.startswith(report.run_id + ":") for key in groups)


def test_report_files(llm, photo_zip, tmp_path):
    photos = photos_from_zip(photo_zip, max_entry_bytes=PHOTO_LIMIT)
    report = run_batch(startup.get_engine(), read_cases(CASES.encode(), photos, limit=MAX_CASES), photos,
                       ["runpod", "openai"])
    csv_path, html_path, metrics_path = write_report(report, tmp_path / "out", titles={"runpod": "RunPod"})
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == RESULT_COLUMNS and len(rows) == 16
    by = {(r["id"], r["provider"]): r for r in rows}
    assert by[("a", "runpod")] | {"latency_ms": "", "first_token_ms": ""} == {
        "id": "a", "provider": "runpod", "model": RUNPOD_MODEL, "expected": "1", "predicted": "1",
        "predicted_name_ko": "기저세포암", "predicted_name_en": "Basal cell carcinoma", "score": "80",
        "risk": "malignant", "similar": "11:10", "correct": "1", "complete": "1", "latency_ms": "",
        "first_token_ms": "", "tokens": "200", "cached": "0", "error": ""}
    assert float(by[("a", "runpod")]["latency_ms"]) > 0
    assert by[("a", "openai")]["correct"] == "0" and by[("b", "openai")]["risk"] == "benign"
    assert by[("a", "openai")]["similar"] == "14:9" and by[("g", "openai")]["similar"] == ""
    assert by[("g", "runpod")]["correct"] == "" and by[("g", "openai")]["error"].startswith("ProviderRequestError")
    assert by[("bad", "openai")]["predicted"] == "" and "unknown image file" in by[("bad", "openai")]["error"]

    page = html_path.read_text(encoding="utf-8")
    assert "40.0%" in page and "60.0%" in page and "<svg" in page
    assert "Confusion matrices" in page and "지루각화증" in page
    assert "<script" not in page and "&lt;script&gt;" in page  # patient text is data
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched

    assert metrics_path == tmp_path / "out" / "metrics.json" and os.stat(metrics_path).st_mode & 0o777 == 0o600
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    assert metrics["providers"]["runpod"]["title"] == "RunPod" and metrics["providers"]["openai"]["title"] == "openai"
    _check_metrics_of_cases(metrics)


def _check_metrics_of_cases(metrics: dict) -> None:
    """metrics.json of CASES: runpod 2/5 flags every case malignant; openai 3/5 misses a (SK for a BCC)."""
    runpod, openai = metrics["providers"]["runpod"], metrics["providers"]["openai"]
    assert (runpod["n"], runpod["unanswered"], runpod["top1_accuracy"], runpod["top3_accuracy"]) == (5, 1, 0.4, 0.4)
    assert (openai["n"], openai["unanswered"], openai["top1_accuracy"], openai["top3_accuracy"]) == (5, 1, 0.6, 0.6)
    assert (runpod["malignant_flagged"], runpod["malignant_positives"], runpod["malignant_cleared"],
            runpod["malignant_negatives"]) == (2, 2, 0, 3)
    assert (openai["malignant_flagged"], openai["malignant_positives"], openai["malignant_cleared"],
            openai["malignant_negatives"]) == (1, 2, 2, 3)
    assert openai["malignant_or_premalignant"]["flagged"] == 2 and openai["malignant_or_premalignant"]["cleared"] == 2
    assert runpod["ece"] == pytest.approx(0.4) and openai["ece"] == pytest.approx(0.83 - 0.6)  # scores 80 / 85
    assert metrics["pairs"] == [{"a": "runpod", "b": "openai", "n": 5, "both_right": 1, "only_a": 1, "only_b": 2,
                                 "both_wrong": 1, "mcnemar_p": 1.0}]


def test_cached_rerun_and_concurrency_bound(llm, monkeypatch):
    # Four answers land at once and each is written to the cache; on a busy machine one write can hold SQLite's lock
    # past the cache's 50 ms patience, and the answer behind it is (by design) not cached. This test is about the
    # batch, not that policy: the cache may wait here.
    monkeypatch.setattr("storage.cache.disk._LOCK_WAIT_SECONDS", 5.0)
    startup.reset_engine()
    slow = {"n": 0}

    def counting(request):
        slow["n"] += 1
        return Reply(BCC, delay=0.15)
    llm.responder = counting
    cases = read_cases("id,text,image,expected\n" + "".join(f"c{i},papule {i},,1\n" for i in range(8)), limit=MAX_CASES)
    report = run_batch(startup.get_engine(), cases, {}, ["runpod"], concurrency=4)
    assert [a.rate for a in report.accuracy()] == [1.0]
    # At most four calls at a time: the 8 arrivals come in at least two waves.
    arrivals = sorted(r.at for r in llm.chat_requests)
    assert arrivals[4] - arrivals[0] >= 0.1
    again = run_batch(startup.get_engine(), cases, {}, ["runpod"])
    assert all(r.cached for r in again.rows) and slow["n"] == 8
    assert again.latency()[0].n == 0 and again.latency()[0].cached == 8 and again.latency()[0].p50 is None
    assert "—" in render_html(again)


def test_input_errors_are_clear(engine_env, tmp_path):
    with pytest.raises(BatchInputError, match="lacks the columns image, expected"):
        read_cases(b"id,text\n1,papule\n", limit=MAX_CASES)
    with pytest.raises(BatchInputError, match="no cases"):
        read_cases(b"id,text,image,expected\n,,,\n", limit=MAX_CASES)
    with pytest.raises(BatchInputError, match="not a readable ZIP"):
        photos_from_zip(b"not a zip", max_entry_bytes=PHOTO_LIMIT)
    # Korean Excel's CSV (CP949), a BOM, a header in capitals, a class name or 7.0 for the code.
    cases = read_cases("ID,Text,Image,Expected\nk,코 옆 구진,,지루각화증\nm,papule,,7.0\n".encode("cp949"),
                       limit=MAX_CASES)
    assert [(c.id, c.expected.code, c.valid) for c in cases] == [("k", 7, True), ("m", 7, True)]
    cases = read_cases("\ufeffid,text,image,expected\nx,,,\ny,a,,\ny,b,,\n".encode(), limit=MAX_CASES)
    assert "empty row" in cases[0].problem and cases[1].valid and "used again (first on line 3)" in cases[2].problem
    engine = startup.get_engine()
    with pytest.raises(BatchInputError, match="Unknown provider 'nope'"):
        run_batch(engine, cases, {}, ["runpod", "nope"])
    # An unreadable photo fails its case for every provider, and nothing is sent.
    photos = {"broken.jpg": b"not an image"}
    report = run_batch(engine, read_cases(b"id,text,image,expected\np,,broken.jpg,\n", photos, limit=MAX_CASES), photos,
                       ["runpod", "openai"])
    assert [r.rejected for r in report.rows] == [True, True] and "photo 'broken.jpg'" in report.failures()[0].message
    assert report.calls == [] and engine_env.requests == []
    # Photos from a directory, read when used; names found by base name when unique.
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    (tmp_path / "imgs" / "sub" / "A.JPG").write_bytes(b"x")
    found = photos_from_dir(tmp_path / "imgs", max_photo_bytes=PHOTO_LIMIT)
    assert list(found) == ["sub/A.JPG"] and find_photo("a.jpg", found) == "sub/A.JPG" and found["sub/A.JPG"] == b"x"


def test_cli_end_to_end(llm, tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "lesion.jpg").write_bytes(_jpeg())
    (tmp_path / "cases.csv").write_text(CASES, encoding="utf-8")
    out = tmp_path / "report"
    done = run_cli("batch", str(tmp_path / "cases.csv"), "--images", str(tmp_path / "photos"), "--providers",
                   "runpod,openai", "--out", str(out), "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    assert (out / "results.csv").is_file() and (out / "report.html").is_file()
    assert str(out / "report.html") in done.stdout
    assert f"metrics: {out / 'metrics.json'}" in done.stdout
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["providers"]["runpod"]["title"] == "RunPod" and metrics["providers"]["openai"]["title"] == "OpenAI"
    _check_metrics_of_cases(metrics)
    assert "accuracy: runpod 40.0% (2/5), openai 60.0% (3/5)" in done.stdout
    assert "16/16" in done.stderr  # the tqdm bar
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "40.0%" in page and "60.0%" in page and "<table class=cm>" in page and "expected ↓" in page


def test_cli_exit_codes(llm, tmp_path, capsys):
    cases = tmp_path / "cases.csv"
    cases.write_text("id,text,image,expected\na,papule,,1\n", encoding="utf-8")
    out = str(tmp_path / "out")
    assert cli.main(["batch", str(tmp_path / "missing.csv"), "--out", out]) == 2
    assert cli.main(["batch", str(cases), "--providers", "runpod,nope", "--out", out]) == 2
    assert "Unknown provider 'nope'" in capsys.readouterr().err
    (tmp_path / "cols.csv").write_text("id,text\na,papule\n", encoding="utf-8")
    assert cli.main(["batch", str(tmp_path / "cols.csv"), "--out", out]) == 2
    assert "lacks the columns image, expected" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("id,text,image,expected\nz,,gone.jpg,\n", encoding="utf-8")
    assert cli.main(["batch", str(tmp_path / "bad.csv"), "--out", out]) == 2  # no row could run
    assert "unknown image file &#x27;gone.jpg&#x27;" in Path(out, "report.html").read_text(encoding="utf-8")
    assert llm.requests == []
    llm.responder = lambda request: Reply.error(401)
    assert cli.main(["batch", str(cases), "--providers", "runpod,openai", "--out", out]) == 3
    assert "every call failed" in capsys.readouterr().err and Path(out, "report.html").is_file()
    llm.responder = responder
    assert cli.main(["batch", str(cases), "--providers", "runpod", "--out", out, "--no-cache"]) == 0
    assert "runpod 100.0% (1/1)" in capsys.readouterr().out


def _panel_script():
    import startup
    from ui.batch_panel import batch_panel
    from ui.state import init_state

    init_state()
    batch_panel(startup.get_engine())


def test_panel(llm, photo_zip):
    at = AppTest.from_function(_panel_script, default_timeout=30).run()
    assert not at.exception
    assert at.button(key="batch_run").disabled  # nothing uploaded yet
    at.file_uploader(key="batch_csv").set_value(("cases.csv", CASES.encode(), "text/csv"))
    at.file_uploader(key="batch_zip").set_value(("photos.zip", photo_zip, "application/zip"))
    at.run()
    assert at.multiselect(key="batch_providers").value == ["runpod", "openai"]
    at.checkbox(key="batch_confirm").check().run()  # 8 cases × 2 providers: confirmed before any call
    at.button(key="batch_run").click().run()
    assert not at.exception and not at.error
    tables = "\n".join(df.value.to_string() for df in at.dataframe)
    assert "40.0%" in tables and "60.0%" in tables  # accuracy, and agreement
    # The Korean page says the failures in Korean (their message ids); the report files keep the English.
    assert "알 수 없는 사진 파일 'missing.jpg'" in tables and "OpenAI이(가) 요청을 거부했습니다 (HTTP 400)." in tables
    assert "unknown image file" not in tables and "refused the request" not in tables
    assert at.warning[0].value == "정확도: runpod 40.0% (2/5), openai 60.0% (3/5); 사례 8개, 실패 3건"
    assert b"unknown image file &#x27;missing.jpg&#x27;" in at.session_state["batch_result"]["html"]
    assert b"ProviderRequestError: OpenAI refused the request (HTTP 400)." in at.session_state["batch_result"]["csv"]
    assert len(llm.chat_requests) == 12
    # Only runpod, in English: the figures change, the last report is replaced.
    at.session_state["lang"] = "en"
    at.multiselect(key="batch_providers").set_value(["runpod"]).run()
    at.checkbox(key="batch_confirm").check().run()  # other providers, another number of calls: asked again
    at.button(key="batch_run").click().run()
    assert not at.exception
    assert "Accuracy" in [s.value for s in at.subheader]
    assert at.warning[0].value == "accuracy: runpod 40.0% (2/5); 8 cases, 2 failures"
    tables = "\n".join(df.value.to_string() for df in at.dataframe)
    assert "unknown image file 'missing.jpg'" in tables and "알 수 없는" not in tables
    assert at.session_state["batch_result"]["report"].providers == ("runpod",)
    assert b"40.0%" in at.session_state["batch_result"]["html"]
    metrics = json.loads(at.session_state["batch_result"]["metrics"])
    assert list(metrics["providers"]) == ["runpod"] and metrics["providers"]["runpod"]["title"] == "RunPod"
    assert metrics["providers"]["runpod"]["top1_accuracy"] == 0.4 and metrics["pairs"] == []


# -- bounded batches: the case limit, the count of calls, results kept as rows finish, --resume -----------------

def test_count_calls_is_what_the_batch_pays_for(llm, photo_zip):
    from qa.batch import count_calls

    photos = photos_from_zip(photo_zip, max_entry_bytes=PHOTO_LIMIT)
    cases = read_cases(CASES.encode(), photos, limit=MAX_CASES)
    assert count_calls(cases, ["runpod", "openai"]) == 12  # six valid cases × two providers; bad rows are free
    assert count_calls(cases, ["runpod", " runpod", ""]) == 6
    assert count_calls(cases, ["runpod", "openai"], done={("a", "runpod"), ("b", "openai")}) == 10
    run_batch(startup.get_engine(), cases, photos, ["runpod", "openai"])
    assert len(llm.chat_requests) == 12


def test_the_case_limit_is_checked_before_any_call(llm, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCH_MAX_CASES", "3")
    startup.reset_engine()
    body = "id,text,image,expected\n" + "".join(f"c{i},papule {i},,1\n" for i in range(4)) + ",,,\n" * 50
    with pytest.raises(BatchInputError) as caught:  # what the Batch tab calls, with the setting's limit
        read_cases(body.encode(), limit=3)
    assert str(caught.value) == ("The cases file has 4 cases; the limit is 3 (BATCH_MAX_CASES). Split it into "
                                 "smaller batches, or raise the limit (command line: --max-cases 4).")
    cases = tmp_path / "cases.csv"
    cases.write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["batch", str(cases), "--providers", "runpod", "--out", str(out)]) == 2
    assert "has 4 cases; the limit is 3" in capsys.readouterr().err and llm.requests == []
    assert not out.exists()  # refused before anything was written either
    assert cli.main(["batch", str(cases), "--providers", "runpod", "--out", str(out), "--max-cases", "4"]) == 0
    assert len(llm.chat_requests) == 4
    assert cli.main(["batch", str(cases), "--providers", "runpod", "--out", str(out), "--max-cases", "2"]) == 2
    # A file far bigger than its cases can be is refused without being parsed.
    with pytest.raises(BatchInputError, match="more than 3 cases can need"):
        read_cases(b"id,text,image,expected\n" + b" " * 2_000_000, limit=3)


def _data_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8-sig", newline="") as f:
        return [r for r in csv.DictReader(f) if r.get("error") is not None]


def test_interrupted_batch_keeps_every_row_it_paid_for_and_resume_finishes_it(llm, tmp_path):
    import signal
    import time

    llm.responder = lambda request: Reply(BCC, delay=0.3)
    cases = tmp_path / "cases.csv"
    cases.write_text("id,text,image,expected\n" + "".join(f"c{i},papule number {i},,1\n" for i in range(8)),
                     encoding="utf-8")
    out = tmp_path / "out"
    args = ["batch", str(cases), "--providers", "runpod", "--out", str(out), "--concurrency", "1"]
    # A real process, for a real Ctrl-C (SIGINT) in the middle of the batch; also the batch command's one run of
    # `python cli.py` end to end.
    run = subprocess.Popen([sys.executable, CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ))
    deadline = time.monotonic() + 30
    while len(_data_rows(out / "results.csv")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # rows appear in results.csv one by one, while the batch runs
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert "interrupted: the rows that finished are in" in err and "--resume" in err
    kept = _data_rows(out / "results.csv")
    assert 2 <= len(kept) < 8
    # The call in flight when Ctrl-C came was paid for: its row was waited for and kept too.
    assert len(kept) == len(llm.chat_requests)
    assert os.stat(out / "results.csv").st_mode & 0o777 == 0o600
    paid = len(llm.chat_requests)

    done = run_cli(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(kept)} rows already in {out / 'results.csv'} are skipped" in done.stderr
    assert len(llm.chat_requests) == 8 == paid + (8 - len(kept))  # each case asked exactly once overall
    rows = _data_rows(out / "results.csv")
    assert [r["id"] for r in rows] == [f"c{i}" for i in range(8)] and all(r["predicted"] == "1" for r in rows)
    assert "runpod 100.0% (8/8)" in done.stdout
    assert "8 cases" in (out / "report.html").read_text(encoding="utf-8")


def test_resume_refuses_the_results_of_another_batch(llm, tmp_path, capsys):
    out = tmp_path / "out"
    first = tmp_path / "first.csv"
    first.write_text("id,text,image,expected\nx,papule,,1\n", encoding="utf-8")
    assert cli.main(["batch", str(first), "--providers", "runpod", "--out", str(out)]) == 0
    other = tmp_path / "other.csv"
    other.write_text("id,text,image,expected\ny,papule,,1\n", encoding="utf-8")
    before = (out / "results.csv").read_bytes()
    assert cli.main(["batch", str(other), "--providers", "runpod", "--out", str(out), "--resume"]) == 2
    assert "holds rows of another batch (case 'x' is not in this one)" in capsys.readouterr().err
    assert (out / "results.csv").read_bytes() == before and len(llm.chat_requests) == 1
    assert cli.main(["batch", str(first), "--providers", "openai", "--out", str(out), "--resume"]) == 2
    assert "provider 'runpod' is not in this one" in capsys.readouterr().err
    # The same batch again: nothing left to ask.
    assert cli.main(["batch", str(first), "--providers", "runpod", "--out", str(out), "--resume"]) == 0
    assert "resuming: 1 row already in" in capsys.readouterr().err and len(llm.chat_requests) == 1


def test_resume_keeps_the_similar_classes_and_reads_an_older_results_csv(llm, tmp_path):
    cases = read_cases(b"id,text,image,expected\nx,papule,,11\ny,nodule,,1\n", limit=MAX_CASES)
    report = run_batch(startup.get_engine(), cases, {}, ["runpod"])
    out = tmp_path / "out"
    write_report(report, out)
    done = read_results(out / "results.csv", cases, ["runpod"])
    assert [done[(c, "runpod")].similar for c in ("x", "y")] == [((11, 10.0),), ((11, 10.0),)]
    # --resume: nothing asked again, and top-3 still sees sebaceous hyperplasia as x's similar class.
    again = run_batch(startup.get_engine(), cases, {}, ["runpod"], done=done)
    assert len(llm.chat_requests) == 2
    from qa.metrics import qa_metrics
    assert qa_metrics(again)["providers"]["runpod"]["top3_accuracy"] == 1.0
    # A results.csv written before the similar column existed still resumes, with no similar classes.
    with (out / "results.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    old = io.StringIO(newline="")
    writer = csv.DictWriter(old, fieldnames=[c for c in RESULT_COLUMNS if c != "similar"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    (out / "results.csv").write_text(old.getvalue(), encoding="utf-8")
    done = read_results(out / "results.csv", cases, ["runpod"])
    assert [(r.predicted.code, r.risk, r.similar) for r in done.values()] == [(1, "malignant", ())] * 2
    # A class code that is not one of the 15 makes that row be asked again rather than guessed.
    bad = io.StringIO(newline="")
    writer = csv.DictWriter(bad, fieldnames=RESULT_COLUMNS)
    writer.writeheader()
    writer.writerows([rows[0] | {"similar": "99:5"}, rows[1]])
    (out / "results.csv").write_text(bad.getvalue(), encoding="utf-8")
    assert list(read_results(out / "results.csv", cases, ["runpod"])) == [("y", "runpod")]
