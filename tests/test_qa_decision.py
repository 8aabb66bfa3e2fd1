"""The decision figures end to end: metrics.json's keys on a fixed batch with subgroups and label provenance
(tests/qa_batches.py), report.html's ROC and language, `cli.py batch --prevalence` and the Batch tab's
prevalence field."""

from __future__ import annotations

import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from qa.metrics import metrics_json, qa_metrics, verdict
from qa.report import render_html
from testkit.answers import xml_answer
from testkit.fake_llm import Reply
from tests.cli_runs import run_cli
from tests.conftest import RUNPOD_MODEL
from tests.qa_batches import TITLES, fixed_report


def test_metrics_json_keys_on_a_fixed_batch():
    m = json.loads(metrics_json(qa_metrics(fixed_report(), TITLES, prevalence=0.05)))
    assert m["set"]["confirmed_answer_labels"] == 3
    assert m["set"]["cases"] == 20 and m["set"]["malignant"] == 5 and m["prevalence"] == {"value": 0.05,
                                                                                           "source": "given"}
    alpha = m["providers"]["alpha"]
    # 19 answered: malignant 4 of 5 flagged; benign 12 of 14 cleared (b1, b2 flagged), b15 unanswered.
    assert (alpha["n"], alpha["unanswered"], alpha["malignant_flagged"], alpha["malignant_cleared"],
            alpha["malignant_negatives"]) == (19, 1, 4, 12, 14)
    # Intention to diagnose: b15 is kept, as not cleared.
    assert (alpha["malignant_negatives_intention_to_diagnose"], alpha["malignant_cleared_intention_to_diagnose"],
            alpha["n_intention_to_diagnose"], alpha["top1_accuracy_intention_to_diagnose"]) == (15, 12, 20, 16 / 20)
    # ROC: malignancy scores m1-m4 90, m5 15; b1, b2 70, the other benign 5. AUROC = (4·14 + 1·12) / 70.
    assert alpha["malignant_auroc"] == pytest.approx((4 * 14 + 12) / 70)
    lo, hi = alpha["malignant_auroc_ci95"]
    assert lo < alpha["malignant_auroc"] < hi <= 1
    assert alpha["malignant_roc_flag"] == {"sensitivity": 0.8, "specificity": 12 / 14}
    assert alpha["malignant_roc"][0]["threshold"] is None  # above every score: nothing called
    at_90 = alpha["specificity_at_90_sensitivity"]
    assert (at_90["threshold"], at_90["sensitivity"], at_90["cleared"], at_90["negatives"]) == (15.0, 1.0, 12, 14)
    # The prevalence figures, and a PPV that falls with the prevalence.
    sens, spec = 0.8, 12 / 14
    assert alpha["ppv"] == pytest.approx(sens * 0.05 / (sens * 0.05 + (1 - spec) * 0.95))
    assert alpha["missed_per_1000"] == pytest.approx(1000 * 0.2 * 0.05)
    assert alpha["lr_positive"] == pytest.approx(sens / (1 - spec))
    own = qa_metrics(fixed_report(), TITLES)
    assert own["prevalence"] == {"value": 0.25, "source": "set"} and own["providers"]["alpha"]["ppv"] > alpha["ppv"]
    # Calibration beside its noise, and the Brier score.
    assert alpha["ece_noise_reference"]["runs"] == 1000 and alpha["brier"] is not None
    # Subgroups: every column, values in order (ages in bands), each with the same figures and the small-n mark.
    assert list(alpha["subgroups"]) == ["fitzpatrick", "site", "age", "sex"]
    assert list(alpha["subgroups"]["age"]) == ["<40", "40-64", "65+"]
    assert list(alpha["subgroups"]["site"]) == ["back"]  # cases without a site are in no site group
    v = alpha["subgroups"]["fitzpatrick"]["V"]
    assert (v["n"], v["malignant_positives"], v["malignant_flagged"]) == (9, 2, 2)
    assert set(v) == set(alpha["excluding_confirmed_answer"])
    assert any(s["stratum"] == "fitzpatrick=V" and s["small"] and s["n"] == 9 for s in alpha["sample_size"])
    # Label provenance: m1, b1, b2 only confirm an answer; without them alpha's false flags are gone.
    without = alpha["excluding_confirmed_answer"]
    assert (without["n"], without["malignant_positives"], without["malignant_cleared"],
            without["malignant_negatives"]) == (16, 4, 12, 12)
    # Pairs: differences with Newcombe intervals, McNemar, kappa on the class and the flag.
    [pair] = m["pairs"]
    assert pair["malignant_sensitivity"]["difference"] == pytest.approx(0.8 - 1.0)
    assert pair["malignant_specificity"]["difference"] == pytest.approx(12 / 14 - 0.0)
    assert pair["kappa_n"] == 19 and pair["flag_kappa"] is not None and pair["flag_kappa_ci95"] is not None
    lo, hi = pair["malignant_specificity"]["difference_ci95"]
    assert lo <= pair["malignant_specificity"]["difference"] <= hi


def test_the_verdict_states_the_prevalence_the_unanswered_and_never_says_equivalent():
    m = qa_metrics(fixed_report(), TITLES, prevalence=0.05)
    said = verdict(m, TITLES)
    assert said[0].startswith("The set holds 20 cases with an expected class, 5 of them malignant (25%).")
    assert "at the given prevalence of 5.0%" in said[0]
    assert any(line.startswith("Alpha gave no answer for 1 of 20 cases") for line in said)
    assert "At a prevalence of 5.0%: Alpha's flag is right 23% (5%–56%) of the time when raised (PPV)" in said[2]
    assert said[3] == ("3 of the 20 labels only confirm a provider's own answer, which favours that provider; without "
                       "them the top-1 accuracy is Alpha 94% (n = 16), Beta 76% (n = 17).")
    assert "Not significant does not mean equivalent" in said[1]
    assert not re.search(r"\bare equivalent\b|\bequally (good|accurate)\b", " ".join(said))
    assert any("malignant cases: n = 5" in line for line in said)  # the small stratum, however large the set


def test_report_html_draws_the_roc_inline_and_opens_with_the_korean_verdict():
    report = fixed_report()
    metrics = qa_metrics(report, TITLES, prevalence=0.05)
    page = render_html(report, metrics, lang="ko")
    assert page.startswith("<!doctype html><html lang=ko>")
    after_title = page.split("</h1>", 1)[1]
    assert after_title.startswith('<section class=verdict aria-label="판정"><h2>판정</h2><p>이 세트에는 정답 분류가')
    roc = page.split('<svg xmlns="http://www.w3.org/2000/svg" class=roc', 1)[1].split("</svg>", 1)[0]
    assert roc.count("<polyline class=curve") == 2 and roc.count("<circle class=flag") == 2
    assert 'data-provider="Alpha"' in roc and 'data-provider="Beta"' in roc
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "<script" not in page and "<link" not in page and "url(" not in page
    # Every table scrolls inside its own box; providers are named by their titles throughout.
    assert page.count("<table") == page.count("<div class=scroll><table")
    assert ">alpha<" not in page and ">beta<" not in page
    for heading in ("악성 ROC", "진료실 유병률에서의 악성 표시", "하위군", "정답의 근거", "군별 표본 크기"):
        assert f"<h2>{heading}</h2>" in page
    assert "우연만으로: " in page  # the ECE beside its noise reference
    english = render_html(report, metrics)
    assert english.startswith("<!doctype html><html lang=en>") and "<h2>Verdict</h2><p>The set holds" in english
    assert "Malignancy ROC" in english and "At the given prevalence of 5.0%." in english


def _answers(request) -> Reply:
    """RunPod: melanoma at 90 (always flags). OpenAI: a nevus at 80, melanoma similar at 10 (never flags)."""
    if request.body["model"] == RUNPOD_MODEL:
        return Reply(xml_answer(6, 90, "악성흑색종", "비대칭 병변.", []))
    return Reply(xml_answer(2, 80, "멜라닌세포모반", "대칭 병변.", [(6, 10, "악성흑색종")]))


CASES = "id,text,image,expected\n" + "".join(f"m{i},lesion {i},,6\n" for i in range(3)) \
    + "".join(f"b{i},lesion b{i},,2\n" for i in range(7))


def test_cli_prevalence_and_language(engine_env, tmp_path):
    engine_env.responder = _answers
    (tmp_path / "cases.csv").write_text(CASES, encoding="utf-8")
    out = tmp_path / "out"
    done = run_cli("batch", str(tmp_path / "cases.csv"), "--providers", "runpod,openai", "--out", str(out),
                   "--prevalence", "0.05", "--lang", "ko")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["prevalence"] == {"value": 0.05, "source": "given"}
    runpod = metrics["providers"]["runpod"]
    assert (runpod["malignant_sensitivity"], runpod["malignant_specificity"]) == (1.0, 0.0)
    assert runpod["flags_per_1000"] == pytest.approx(1000.0) and runpod["missed_per_1000"] == pytest.approx(0.0)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<html lang=ko>" in page and "입력한 유병률 5.0% 기준" in page
    for bad in ("0", "1", "1.5", "-0.1", "five"):
        refused = run_cli("batch", str(tmp_path / "cases.csv"), "--out", str(out), "--prevalence", bad)
        assert refused.returncode == 2 and "--prevalence" in refused.stderr, bad
    default = run_cli("batch", str(tmp_path / "cases.csv"), "--providers", "runpod", "--out", str(tmp_path / "d"))
    assert default.returncode == 0
    assert json.loads((tmp_path / "d" / "metrics.json").read_text(encoding="utf-8"))["prevalence"] == {
        "value": 0.3, "source": "set"}
    assert "<html lang=en>" in (tmp_path / "d" / "report.html").read_text(encoding="utf-8")


def _panel_script():
    import startup
    from ui.batch_panel import batch_panel
    from ui.state import init_state

    init_state()
    batch_panel(startup.get_engine())


def test_the_batch_tabs_prevalence_field_recomputes_without_asking_again(engine_env):
    engine_env.responder = _answers
    at = AppTest.from_function(_panel_script, default_timeout=30).run()
    assert at.number_input(key="batch_prevalence").value is None  # empty: the set's own
    at.file_uploader(key="batch_csv").set_value(("cases.csv", CASES.encode(), "text/csv")).run()
    at.checkbox(key="batch_confirm").check().run()
    at.button(key="batch_run").click().run()
    assert not at.exception
    calls = len(engine_env.chat_requests)
    assert calls == 20
    assert "세트 자체의 유병률 30.0% 기준" in " ".join(c.value for c in at.caption)  # said as the set's own, in Korean
    assert json.loads(at.session_state["batch_result"]["metrics"])["prevalence"]["source"] == "set"
    assert "판정" in [s.value for s in at.subheader]
    at.number_input(key="batch_prevalence").set_value(5.0).run()
    assert not at.exception
    metrics = json.loads(at.session_state["batch_result"]["metrics"])
    assert metrics["prevalence"] == {"value": 0.05, "source": "given"}
    assert "입력한 유병률 5.0% 기준" in " ".join(c.value for c in at.caption)
    [table] = [df.value for df in at.dataframe if "PPV" in df.value.columns]
    # RunPod flags everything: at 5% a flag is malignant 5% of the time; OpenAI flags nothing: no PPV.
    assert table["PPV"][0].startswith("5.0% (") and table["PPV"][1] == "—"
    assert b"lang=ko" in at.session_state["batch_result"]["html"]
    assert len(engine_env.chat_requests) == calls  # the same answers: no provider asked again
