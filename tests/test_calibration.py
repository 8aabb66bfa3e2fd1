"""Calibrated scores and the refer rule (issue 22): `cli.py qa calibrate` on a fixed results.csv, the map it writes
applied without scikit-learn, CALIBRATION_FILE and REFER_BELOW on the card, the API, the command line and History,
and the report's coverage-accuracy section."""

from __future__ import annotations

import ast
import csv
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from domain.classes import by_code
from qa.batch_input import BatchCase
from qa.batch_metrics import BatchReport, BatchRow
from qa.calibrate import fit_provider
from qa.report import RESULT_COLUMNS, render_html, write_report
from qa.report_calibration import calibration_figures
from tests.api_server import api_server
from tests.app_scripts import history_page
from tests.cli_runs import run_cli
from tests.conftest import PROJECT_ROOT
from tests.page_text import alerts, shown
from utils.score_calibration import CalibrationInvalid, calibration_from_json, read_calibration
from utils.settings import SettingsError, load_settings

APP = str(PROJECT_ROOT / "main.py")
# RunPod's fake answer scores 78 (testkit.answers.VALID): 0.3 + (0.6 - 0.3) × (0.78 - 0.6) / (0.9 - 0.6) = 0.48.
CALIBRATION = {"version": 1, "providers": {
    "runpod": {"method": "isotonic", "n": 240, "date": "2026-12-01", "map": {"x": [0.2, 0.6, 0.9],
                                                                             "y": [0.1, 0.3, 0.6]}},
    "openai": {"method": "sigmoid", "n": 180, "date": "2026-12-02", "map": {"a": 4.0, "b": -2.0}}}}


@pytest.fixture
def calibration_file(tmp_path) -> Path:
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(CALIBRATION), encoding="utf-8")
    return path


def _results(path: Path, shapes: dict[str, tuple[int, object]], seed: int = 22) -> Path:
    """A fixed results.csv: per provider, n cases whose chance of being right at score s is shape(s)."""
    rng = random.Random(seed)
    rows = []
    for provider, (n, shape) in shapes.items():
        for i in range(n):
            score = rng.choice(range(20, 100, 5))
            right = rng.random() < shape(score)
            rows.append(dict.fromkeys(RESULT_COLUMNS, "") | {
                "id": f"c{i}", "provider": provider, "model": "m", "expected": "1", "predicted": "1" if right else "2",
                "score": str(score), "correct": "1" if right else "0", "label_basis": "histology" if i % 3 else ""})
    rows.append(dict.fromkeys(RESULT_COLUMNS, "") | {"id": "f", "provider": "runpod", "error": "ProviderTimeout"})
    with (path / "results.csv").open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, RESULT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _step(score: float) -> float:  # not monotone: isotonic pools it, a sigmoid cannot bend to it
    return 0.1 if score < 50 else 0.85 if score < 75 else 0.55


def _smooth(score: float) -> float:  # an over-confident model: a logistic curve fits it
    return 0.15 + 0.6 * (score / 100) ** 2


def _ece(pairs) -> float:
    """ECE over 10 equal bins, written out here (independent of utils/stats.py)."""
    bins: dict[int, list] = {}
    for p, right in pairs:
        bins.setdefault(min(int(round(p * 100, 9)) // 10, 9), []).append((p, right))
    return sum(len(b) / len(pairs) * abs(sum(r for _, r in b) / len(b) - sum(p for p, _ in b) / len(b))
               for b in bins.values())


def test_calibrate_writes_the_map_chosen_by_cross_validated_brier(tmp_path):
    folder = _results(tmp_path, {"runpod": (300, _step), "openai": (240, _smooth), "local": (12, _smooth)})
    done = run_cli("qa", "calibrate", str(folder), "--out", str(tmp_path / "calibration.json"))
    assert done.returncode == 0, done.stderr
    found = json.loads((tmp_path / "calibration.json").read_text(encoding="utf-8"))
    assert set(found) >= {"version", "date", "providers", "skipped", "selection", "map_form"}
    assert list(found["skipped"]) == ["local"] and "at least 30" in found["skipped"]["local"]
    runpod, openai = found["providers"]["runpod"], found["providers"]["openai"]
    assert set(runpod) == {"method", "n", "right", "date", "map", "cv", "label_basis"}
    assert runpod["n"] == 300 and openai["n"] == 240  # the failed call is not a case
    assert runpod["label_basis"] == {"histology": 200, "not given": 100}
    for entry in (runpod, openai):
        brier = entry["cv"]["brier"]
        assert entry["method"] == min(("isotonic", "sigmoid"), key=brier.get)
        assert entry["cv"]["ece_after"] < entry["cv"]["ece_before"]
        assert entry["cv"]["folds"] == 5 and entry["cv"]["seed"] == 0
    assert runpod["method"] == "isotonic" and set(runpod["map"]) == {"x", "y"}
    assert openai["method"] == "sigmoid" and set(openai["map"]) == {"a", "b"}
    # The figures before calibration, recomputed here from the file.
    with (folder / "results.csv").open(encoding="utf-8-sig") as f:
        pairs = [(float(r["score"]) / 100, r["correct"] == "1") for r in csv.DictReader(f)
                 if r["provider"] == "runpod" and r["score"]]
    assert runpod["cv"]["brier"]["uncalibrated"] == pytest.approx(sum((p - r) ** 2 for p, r in pairs) / len(pairs))
    assert runpod["cv"]["ece_before"] == pytest.approx(_ece(pairs))
    assert "runpod: isotonic on 300 cases" in done.stderr and "local: not calibrated" in done.stderr
    # The same file gives the same choice and numbers (seeded folds).
    again = run_cli("qa", "calibrate", str(folder / "results.csv"), "--out", str(tmp_path / "again.json"))
    assert again.returncode == 0 and json.loads((tmp_path / "again.json").read_text())["providers"] == \
        found["providers"]


def test_the_written_map_applied_without_scikit_learn_predicts_as_scikit_learn_does(tmp_path):
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    rng = random.Random(3)
    cases = [(float(s), rng.random() < _step(s), "") for s in (rng.choice(range(20, 100, 5)) for _ in range(300))]
    entry = fit_provider(cases, today="2026-12-07")
    assert isinstance(entry, dict) and entry["method"] == "isotonic"
    calibration = calibration_from_json({"version": 1, "providers": {"p": entry}})
    x = [[s / 100] for s, _, _ in cases]
    y = [int(r) for _, r, _ in cases]
    model = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit([v[0] for v in x], y)
    for score in (0, 12.5, 20, 47, 50, 63.3, 99, 100):
        assert calibration.calibrate("p", score).score == pytest.approx(model.predict([score / 100])[0] * 100)
    sigmoid = calibration_from_json({"version": 1, "providers": {"p": {
        "method": "sigmoid", "n": 300, "date": "d", "map": {"a": 4.0, "b": -2.0}}}})
    platt = LogisticRegression(C=1e6).fit(x, y)
    fitted = calibration_from_json({"version": 1, "providers": {"p": {
        "method": "sigmoid", "n": 300, "date": "d",
        "map": {"a": float(platt.coef_[0][0]), "b": float(platt.intercept_[0])}}}})
    assert fitted.calibrate("p", 63).score == pytest.approx(platt.predict_proba([[0.63]])[0][1] * 100)
    # Known numbers: 1 / (1 + e^0) = 0.5 at a score of 50; 1 / (1 + e^-2) at 100.
    assert sigmoid.calibrate("p", 50).score == pytest.approx(50.0)
    assert sigmoid.calibrate("p", 100).score == pytest.approx(88.0797, abs=1e-4)


def test_the_isotonic_map_interpolates_and_holds_flat_beyond_its_ends(calibration_file):
    calibration = read_calibration(calibration_file, refer_below=50)
    assert calibration.calibrate("runpod", 78).score == pytest.approx(48.0)
    assert calibration.calibrate("runpod", 40).score == pytest.approx(20.0)
    assert calibration.calibrate("runpod", 5).score == pytest.approx(10.0)
    assert calibration.calibrate("runpod", 95).score == pytest.approx(60.0)
    found = calibration.calibrate("runpod", 78)
    assert found.refer and not calibration.calibrate("runpod", 95).refer
    assert found.to_dict() == {"score": 48.0, "n": 240, "date": "2026-12-01", "method": "isotonic",
                               "refer_below": 50, "refer": True}
    assert calibration.calibrate("local", 78) is None and calibration.calibrate("runpod", None) is None


def test_a_stored_result_keeps_its_calibrated_score(calibration_file):
    from dataclasses import replace

    from domain.parser import parse_answer
    from domain.result import Diagnosis
    from testkit.answers import VALID

    calibrated = read_calibration(calibration_file, refer_below=50).calibrate("runpod", 78)
    result = Diagnosis(answer=parse_answer(VALID), provider="runpod", model="m", raw=VALID, elapsed_ms=1.0)
    with_it = replace(result, calibrated=calibrated)
    assert Diagnosis.from_dict(with_it.to_dict()).calibrated == calibrated  # a background job's stored result
    assert Diagnosis.from_dict(result.to_dict()).calibrated is None


@pytest.mark.parametrize(("content", "said"), [
    (None, "no such file"), ("{not json", "it is not JSON"), ('{"version": 2, "providers": {}}', "version 1"),
    ('{"version": 1, "providers": {}}', "calibrates no provider"),
    ('{"version": 1, "providers": {"runpod": {"method": "magic", "n": 3, "date": "d", "map": {}}}}',
     "needs a method"),
    ('{"version": 1, "providers": {"runpod": {"method": "isotonic", "n": 3, "date": "d", '
     '"map": {"x": [0.1, 0.5], "y": [0.9, 0.2]}}}}', "x must rise, y must be probabilities that do not fall"),
])
def test_a_missing_or_malformed_file_is_one_settings_message(tmp_path, content, said):
    path = tmp_path / "calibration.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CalibrationInvalid, match=said):
        read_calibration(path)
    with pytest.raises(SettingsError) as refused:
        load_settings({"CALIBRATION_FILE": str(path)})
    assert str(refused.value).startswith(f"CALIBRATION_FILE ({path}) cannot be used: ") and said in str(refused.value)
    assert "cli.py qa calibrate" in str(refused.value)


def test_refer_below_needs_a_calibration_and_a_confidence_from_0_to_100(calibration_file):
    with pytest.raises(SettingsError, match="REFER_BELOW needs CALIBRATION_FILE"):
        load_settings({"REFER_BELOW": "50"})
    with pytest.raises(SettingsError, match="REFER_BELOW must be between 0 and 100"):
        load_settings({"REFER_BELOW": "150", "CALIBRATION_FILE": str(calibration_file)})
    settings = load_settings({"REFER_BELOW": "50", "CALIBRATION_FILE": str(calibration_file)})
    assert (settings.refer_below, settings.calibration_file) == (50.0, calibration_file)
    assert load_settings({}).calibration_file is None and load_settings({}).refer_below is None


def test_the_command_lines_json_and_text_show_the_calibrated_score(engine_env, calibration_file):
    env = {"CALIBRATION_FILE": str(calibration_file), "REFER_BELOW": "50"}
    done = run_cli("diagnose", "--text", "pearly papule beside the nose", "--json", env=env)
    assert done.returncode == 0, done.stderr
    label = json.loads(done.stdout)["label"]
    assert label["score"] == 78 and label["calibrated_score"] == 48.0
    assert label["calibrated"] == {"score": 48.0, "n": 240, "date": "2026-12-01", "method": "isotonic",
                                   "refer_below": 50.0, "refer": True}
    done = run_cli("diagnose", "--text", "pearly papule beside the nose", env=env)
    assert "calibrated score 48 (calibrated on 240 cases, 2026-12-01)" in done.stdout
    assert "REFER: low confidence (calibrated score 48 is below REFER_BELOW 50)" in done.stdout
    plain = run_cli("diagnose", "--text", "pearly papule beside the nose", "--json")
    assert "calibrated_score" not in json.loads(plain.stdout)["label"]  # no file: the JSON as before
    broken = run_cli("diagnose", "--text", "x", env={"CALIBRATION_FILE": str(calibration_file.parent / "none.json")})
    assert broken.returncode == 2 and broken.stderr.startswith("error: CALIBRATION_FILE (")


def test_the_card_shows_the_calibrated_score_and_the_refer_rule(engine_env, calibration_file, reconfigure):
    reconfigure(CALIBRATION_FILE=str(calibration_file), REFER_BELOW="50")
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.text_area(key="symptoms").input("코 옆의 진주빛 구진").run()
    at = at.button(key="assess").click().run()
    assert not at.exception
    text = shown(at)
    assert "점수 78 / 100" in text
    assert "보정 점수 48 / 100: 이런 답변 100건 중 약 48건이 맞았습니다 (2026-12-01, 240건으로 보정)" in text
    assert any("의뢰: 신뢰도 낮음" in w and "보정 점수 48이(가) 병원 기준 50보다 낮습니다" in w
               for w in alerts(at, "warning"))
    # Above the threshold the card says the calibrated score but does not refer.
    reconfigure(CALIBRATION_FILE=str(calibration_file), REFER_BELOW="40")
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.text_area(key="symptoms").input("코 옆의 진주빛 구진 2").run()
    at = at.button(key="assess").click().run()
    assert "보정 점수 48 / 100" in shown(at) and not any("의뢰: 신뢰도 낮음" in w for w in alerts(at, "warning"))
    # History: the calibrated score beside the model's own.
    page = history_page()
    frame = page.dataframe[0].value
    assert list(frame["calibrated"]) == [48.0, 48.0] and list(frame["score"]) == [78.0, 78.0]
    assert list(frame.columns).index("calibrated") == list(frame.columns).index("score") + 1


def test_a_malformed_file_is_said_on_the_page_not_a_crash(engine_env, reconfigure, tmp_path):
    (tmp_path / "bad.json").write_text("[]", encoding="utf-8")
    reconfigure(CALIBRATION_FILE=str(tmp_path / "bad.json"))
    at = AppTest.from_file(APP, default_timeout=20).run()
    assert not at.exception
    assert any("CALIBRATION_FILE" in e and "cannot be used" in e for e in alerts(at, "error"))


def test_the_api_gives_the_calibrated_score(tmp_path, calibration_file):
    with api_server(tmp_path, CALIBRATION_FILE=str(calibration_file), REFER_BELOW="50") as server, \
            server.client(server.token("dr.kim")) as client:
        body = client.post("/api/v1/diagnose/skin-lesion", json={"lesion_description": "pearly papule"}).json()
        stored = client.get(f"/api/v1/analyses/{body['id']}").json()  # a stored analysis: calibrated as well
    assert stored["metadata"]["calibrated"]["score"] == 48.0 and stored["metadata"]["calibrated"]["refer"]
    assert body["confidence"] == 78
    assert body["metadata"]["calibrated"] == {"score": 48.0, "n": 240, "date": "2026-12-01", "method": "isotonic",
                                              "refer_below": 50.0, "refer": True}
    assert body["assessment"]["label"]["calibrated_score"] == 48.0


def test_the_app_never_imports_scikit_learn(engine_env, calibration_file):
    # Only qa/calibrate.py may import it, and only inside the command's function.
    for path in PROJECT_ROOT.glob("[a-z]*/**/*.py"):
        if ".venv" in path.parts or path.parts[len(PROJECT_ROOT.parts)] in ("tests", "bench"):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "sklearn" for n in names), path
    code = ("import sys, cli, startup, ui.card, ui.history_view, web.routes;"
            "code = cli.main(['diagnose', '--text', 'pearly papule', '--json']);"
            "assert 'sklearn' not in sys.modules, 'sklearn imported'; sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**__import__("os").environ, "CALIBRATION_FILE": str(calibration_file)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["label"]["calibrated_score"] == 48.0


def _case(i: int, expected: int) -> BatchCase:
    return BatchCase(id=f"c{i}", line=i + 2, text="t", expected=by_code(expected))


def test_the_report_shows_coverage_and_accuracy_at_refer_below(calibration_file, tmp_path):
    # Scores 95, 95, 78, 78, 40 calibrate to 60, 60, 48, 48, 20; the first, third and fifth are right.
    calibration = read_calibration(calibration_file, refer_below=50)
    cases = [_case(i, 1) for i in range(5)]
    rows = [BatchRow(case=c, provider="runpod", predicted=by_code(1 if right else 7), score=score, risk="benign")
            for c, (score, right) in zip(cases, [(95, True), (95, False), (78, True), (78, False), (40, True)],
                                         strict=True)]
    report = BatchReport(run_id="r", providers=("runpod",), models={"runpod": "m"}, cases=tuple(cases), rows=rows)
    figures = calibration_figures(report, calibration)["runpod"]
    assert figures["curve"] == [(60.0, 0.4, 0.5), (48.0, 0.8, 0.5), (20.0, 1.0, 0.6)]
    rule = figures["at_refer_below"]
    assert (rule["coverage"]["k"], rule["coverage"]["n"], rule["accuracy"]["k"], rule["accuracy"]["n"]) == (2, 5, 1, 2)
    assert (rule["referred_accuracy"]["k"], rule["referred_accuracy"]["n"]) == (2, 3)
    page = render_html(report, calibration=calibration)
    assert "Calibrated scores and the refer rule" in page and "kept at REFER_BELOW 50" in page
    section = page[page.index("Calibrated scores and the refer rule"):]
    assert "40.0% (2/5; 95% CI" in section and section.count("<polyline") == 1
    korean = render_html(report, calibration=calibration, lang="ko")
    assert "보정 점수와 의뢰 규칙" in korean and "Calibrated scores" not in korean
    assert "href=" not in page and 'src="http' not in page  # offline: no outside URL
    assert "Calibrated scores" not in render_html(report)
    write_report(report, tmp_path, calibration=calibration)
    written = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["calibrated_scores"]["runpod"]
    assert written["at_refer_below"]["coverage"]["k"] == 2 and written["curve"][0] == [60.0, 0.4, 0.5]
