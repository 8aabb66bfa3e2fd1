"""report.html in Chromium at 1280 px: the page never scrolls sideways, a wide table scrolls inside its own box."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from domain.classes import by_code
from qa.metrics import qa_metrics
from qa.report import render_html
from testkit.browser import CHROMIUM
from tests.qa_batches import TITLES, fixed_report

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]


def _wide_report():
    """The fixed batch with long descriptions and one provider answering all 15 classes: wide tables."""
    report = fixed_report()
    report.rows = [replace(r, predicted=by_code(i % 15)) if r.provider == "beta" else r
                   for i, r in enumerate(report.rows)]
    report.cases = tuple(replace(c, text="a long description of the lesion " * 12) for c in report.cases)
    return report


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_report_fits_a_1280_px_window(browser, lang):
    report = _wide_report()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_content(render_html(report, qa_metrics(report, TITLES, prevalence=0.05), lang=lang))
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    widest = page.evaluate("Math.max(...[...document.querySelectorAll('div.scroll')].map(d => d.scrollWidth))")
    assert widest > 1280  # the confusion matrix is wider than the window, and scrolls inside its box
    assert page.locator("svg.roc polyline.curve").count() == 2
    assert page.locator("h2").first.inner_text() == ("판정" if lang == "ko" else "Verdict")
