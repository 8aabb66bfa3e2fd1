"""report.html's verdict, figures with intervals, reliability diagram and per-class table, from a metrics dict.

The dict is written by hand in the metrics.json shape, so every number on the page is known; render_html's own
computation (`qa.metrics`) is replaced by a fake module that hands that dict back.
"""

from __future__ import annotations

import html
import re
import sys
import types
from html.parser import HTMLParser

import pytest

from domain.classes import by_code
from qa import report as qa_report
from qa.batch_input import BatchCase
from qa.batch_metrics import BatchReport, BatchRow
from qa.report import render_html
from qa.report_figures import BOTTOM, PLOT, TOP, metrics_sections, reliability_svg

HOSTILE = "RunPod <script>alert(1)</script>"
ACCURACIES = [None, None, 0.0, 0.25, 0.5, 0.4, 0.6, 0.75, 0.8, 1.0]   # per bin; None: no case in it
COUNTS = [0, 0, 1, 4, 2, 5, 5, 8, 10, 9]


def _calibration(accuracies: list[float | None], counts: list[int]) -> list[dict]:
    return [{"bin": [i / 10, (i + 1) / 10], "n": n, "accuracy": a,
             "confidence": None if a is None else round(i / 10 + 0.05, 2)}
            for i, (a, n) in enumerate(zip(accuracies, counts, strict=True))]


def _metrics() -> dict:
    runpod = {
        "title": HOSTILE, "model": "derm-ft <img src=x onerror=alert(2)>", "n": 45, "unanswered": 0,
        "top1_accuracy": 36 / 45, "top1_ci95": [0.6616, 0.8912],
        "top3_accuracy": 42 / 45, "top3_ci95": [0.8214, 0.9771],
        "malignant_sensitivity": 1.0, "malignant_sensitivity_ci95": [0.7008, 1.0],
        "malignant_positives": 9, "malignant_flagged": 9,
        "malignant_specificity": 30 / 36, "malignant_specificity_ci95": [0.6811, 0.9212],
        "malignant_negatives": 36, "malignant_cleared": 30,
        "malignant_or_premalignant": {"sensitivity": 12 / 14, "sensitivity_ci95": [0.6006, 0.9599],
                                      "positives": 14, "flagged": 12, "specificity": 25 / 31,
                                      "specificity_ci95": [0.6366, 0.9081], "negatives": 31, "cleared": 25},
        "ece": 0.0834,
        "calibration": _calibration(ACCURACIES, COUNTS),
        "per_class": [
            {"code": 1, "name_en": "Basal cell carcinoma", "name_ko": "기저세포암", "support": 9, "predicted": 12,
             "precision": 0.75, "recall": 1.0},
            {"code": 13, "name_en": "Wart", "name_ko": "사마귀", "support": 3, "predicted": 0,
             "precision": None, "recall": 0.0},
        ],
    }
    silent = {   # a provider that never answered: every share is null
        "title": "OpenAI", "model": "gpt-4o", "n": 0, "unanswered": 45,
        "top1_accuracy": None, "top1_ci95": None, "top3_accuracy": None, "top3_ci95": None,
        "malignant_sensitivity": None, "malignant_sensitivity_ci95": None,
        "malignant_positives": 0, "malignant_flagged": 0,
        "malignant_specificity": None, "malignant_specificity_ci95": None,
        "malignant_negatives": 0, "malignant_cleared": 0,
        "malignant_or_premalignant": {"sensitivity": None, "sensitivity_ci95": None, "positives": 0, "flagged": 0,
                                      "specificity": None, "specificity_ci95": None, "negatives": 0, "cleared": 0},
        "ece": None, "calibration": _calibration([None] * 10, [0] * 10), "per_class": [],
    }
    return {
        "method": {"interval": "wilson", "confidence": 0.95, "ece_bins": 10,
                   "flag_rule": "The label, or a similar class scoring 20 or more, is malignant.",
                   "malignant_classes": [1, 6, 8], "premalignant_classes": [0, 3], "min_n_for_intervals": 30},
        "providers": {"runpod": runpod, "openai": silent},
        "pairs": [{"a": "runpod", "b": "openai", "n": 0, "both_right": 0, "only_a": 0, "only_b": 0,
                   "both_wrong": 0, "mcnemar_p": None}],
    }


VERDICT = ["RunPod flagged 9 of 9 malignant cases, OpenAI 0 of 0; the difference in top-1 accuracy is not "
           "significant (exact McNemar p = 1, n = 0).",
           "OpenAI answered no case with an expected class: its intervals are too wide to decide on <yet>."]


def _report() -> BatchReport:
    case = BatchCase(id="a", line=2, text="pearly papule", expected=by_code(1))
    return BatchReport(run_id="run-1", providers=("runpod", "openai"), models={"runpod": "ft", "openai": "gpt-4o"},
                       cases=(case,), rows=[BatchRow(case=case, provider="runpod", model="ft", predicted=by_code(1),
                                                     score=80.0, risk="malignant"),
                                            BatchRow(case=case, provider="openai", model="gpt-4o", error="HTTP 500")])


@pytest.fixture
def fake_qa_metrics(monkeypatch):
    """`qa.metrics` as render_html imports it, answering with the hand-written dict; records its calls."""
    calls: dict[str, object] = {}
    module = types.ModuleType("qa.metrics")

    def qa_metrics(report):
        calls["report"] = report
        return _metrics()

    def verdict(metrics, names, lang="en"):
        calls["names"], calls["lang"] = dict(names), lang
        return list(VERDICT)

    module.qa_metrics, module.verdict = qa_metrics, verdict  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qa.metrics", module)
    # and wherever qa_report holds them by name, should it import them at the top
    monkeypatch.setattr(qa_report, "qa_metrics", qa_metrics, raising=False)
    monkeypatch.setattr(qa_report, "verdict", verdict, raising=False)
    return calls


class _Tables(HTMLParser):
    """Every table as rows of cell texts (th and td alike)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


class _Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, attrs))


def _tables(page: str) -> list[list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _by_label(table: list[list[str]]) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in table}


def test_the_verdict_is_the_first_thing_after_the_title(fake_qa_metrics):
    page = render_html(_report())
    after_title = page.split("</h1>", 1)[1]
    assert after_title.startswith("<section class=verdict")
    verdict = after_title.split("</section>", 1)[0]
    assert "<h2>Verdict</h2><p>RunPod flagged 9 of 9 malignant cases, OpenAI 0 of 0;" in verdict
    assert "too wide to decide on &lt;yet&gt;.</p>" in verdict
    # the verdict is told each provider's title, and comes before every figure and the run's details
    assert fake_qa_metrics["names"] == {"runpod": HOSTILE, "openai": "OpenAI"}
    assert fake_qa_metrics["report"].run_id == "run-1"
    order = [page.index(s) for s in ("<h2>Verdict</h2>", "<h2>Accuracy, malignancy and calibration</h2>",
                                     "<h2>Calibration:", "<h2>Per class:", "<h2>Run</h2>",
                                     "<h2>Accuracy against the expected class</h2>")]
    assert order == sorted(order)


def test_a_given_metrics_dict_is_used_as_it_is(monkeypatch):
    module = types.ModuleType("qa.metrics")
    module.qa_metrics = module.verdict = lambda *a: pytest.fail("computed again")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qa.metrics", module)
    monkeypatch.setattr(qa_report, "qa_metrics", module.qa_metrics, raising=False)
    monkeypatch.setattr(qa_report, "verdict", module.verdict, raising=False)
    page = render_html(_report(), _metrics(), ["Only this."])
    assert "<h2>Verdict</h2><p>Only this.</p></section>" in page


def test_figures_show_values_intervals_counts_and_dashes_for_nulls():
    page = metrics_sections(_metrics(), VERDICT)
    figures = _by_label(_tables(page)[0])
    assert figures["figure"][1] == "OpenAI gpt-4o"
    assert figures["cases scored (n)"] == ["45", "0"]
    assert figures["unanswered"] == ["0", "45"]
    assert figures["top-1 accuracy"] == ["80.0% (66.2–89.1%) 36 of 45", "— (—) —"]
    assert figures["top-3 accuracy"] == ["93.3% (82.1–97.7%) 42 of 45", "— (—) —"]
    assert figures["malignant: sensitivity"] == ["100.0% (70.1–100.0%) flagged 9 of 9", "— (—) flagged 0 of 0"]
    assert figures["malignant: specificity"] == ["83.3% (68.1–92.1%) cleared 30 of 36", "— (—) cleared 0 of 0"]
    assert figures["malignant or premalignant: sensitivity"] == ["85.7% (60.1–96.0%) flagged 12 of 14",
                                                                 "— (—) flagged 0 of 0"]
    assert figures["malignant or premalignant: specificity"] == ["80.6% (63.7–90.8%) cleared 25 of 31",
                                                                 "— (—) cleared 0 of 0"]
    assert figures["calibration error (ECE)"] == ["0.083", "—"]
    # the interval method is named, with the confidence and the classes the flag counts
    assert ("95% intervals by the Wilson method. The card's red flag: the chosen class, or a similar class scoring "
            "20 or more") in html.unescape(page)
    assert "Malignant classes: 1 Basal cell carcinoma, 6 " in page and "premalignant: 0 " in page
    [pairs] = [t for t in _tables(page) if t[0][:3] == ["A", "B", "n"]]
    assert pairs[1][2:] == ["0", "0", "0", "0", "0", "—"]


def test_per_class_table():
    tables = [t for t in _tables(metrics_sections(_metrics(), VERDICT)) if t[0][0] == "code"]
    [runpod] = tables   # OpenAI answered nothing: a sentence, not an empty table
    assert runpod[0] == ["code", "class (ko)", "class (en)", "support", "predicted", "precision", "recall"]
    assert runpod[1:] == [["1", "기저세포암", "Basal cell carcinoma", "9", "12", "75.0%", "100.0%"],
                          ["13", "사마귀", "Wart", "3", "0", "—", "0.0%"]]
    assert "No answered case with an expected class." in metrics_sections(_metrics(), VERDICT)


def _bars(svg: str) -> dict[int, tuple[float, float, float]]:
    """bin → (x, y, height) of each accuracy bar."""
    found = re.findall(r'<rect class=acc data-bin="(\d+)" x="([\d.]+)" y="([\d.]+)" width="[\d.]+" '
                       r'height="([\d.]+)"', svg)
    return {int(i): (float(x), float(y), float(h)) for i, x, y, h in found}


def test_reliability_diagram_has_ten_bins_with_accuracy_heights():
    full = [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0]
    svg = reliability_svg(_calibration(full, [3] * 10), title="t")
    bars = _bars(svg)
    assert sorted(bars) == list(range(10))
    for i, accuracy in enumerate(full):
        x, y, h = bars[i]
        assert h == pytest.approx(PLOT * accuracy, abs=0.05)
        assert y + h == pytest.approx(TOP + PLOT, abs=0.1)          # standing on the axis
        assert x == pytest.approx(44 + PLOT * i / 10 + 1, abs=0.05)  # in its own bin, left to right
    assert re.findall(r"<text class=count[^>]*>(\d+)</text>", svg) == ["3"] * 10
    assert 'y2="12"' in svg and f'y1="{TOP + PLOT}"' in svg        # the diagonal, corner to corner
    assert f'height="{TOP + PLOT + BOTTOM}"' in svg


def test_empty_bins_have_no_bar_but_keep_their_count():
    svg = reliability_svg(_calibration(ACCURACIES, COUNTS), title="t")
    bars = _bars(svg)
    assert sorted(bars) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert {i: round(h / PLOT, 3) for i, (_, _, h) in bars.items()} == \
        {i: a for i, a in enumerate(ACCURACIES) if a is not None}
    assert re.findall(r"<text class=count[^>]*>(\d+)</text>", svg) == [str(n) for n in COUNTS]
    nothing = reliability_svg(_calibration([None] * 10, [0] * 10), title="t")
    assert _bars(nothing) == {} and len(re.findall(r"<text class=count", nothing)) == 10


def test_outside_text_is_escaped(fake_qa_metrics):
    page = render_html(_report())
    assert "<script" not in page and "<img" not in page
    assert "RunPod &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "derm-ft &lt;img src=x onerror=alert(2)&gt;" in page
    assert 'aria-label="Reliability diagram: RunPod &lt;script&gt;alert(1)&lt;/script&gt;"' in page


def test_the_report_loads_nothing_from_outside(fake_qa_metrics):
    page = render_html(_report())
    tags = _Tags()
    tags.feed(page)
    assert not {"script", "link", "iframe", "img", "object", "embed", "image", "use", "a"} & {t for t, _ in tags.seen}
    assert not {"src", "href", "xlink:href", "srcset"} & {name for _, attrs in tags.seen for name, _ in attrs}
    style = page.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert page.count("<svg") >= 2   # a reliability diagram per provider, drawn inline
