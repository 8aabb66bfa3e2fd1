"""`python -m bench.double_reading` on a handful of cases at a tiny scale, so that the benchmark cannot rot.

Its numbers depend on the machine and are not asserted; what is asserted is that both days run through the
real engine and the simulator, and that what the report adds up is consistent: every recorded case has its
second reading's state, the app's figures count the same readings, and RunPod's bill is read for both days.
With RunPod set to read another class on every case, no reading that came may agree.
"""

from __future__ import annotations

import io

from PIL import Image

from bench.double_reading import markdown, run
from domain.readings import AGREE, DIFFER, DIFFER_RISK


def small_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (170, 110, 90)).save(out, "JPEG", quality=80)
    return out.getvalue()


def test_both_days_run_and_the_report_adds_up():
    results, headline = run(3, scale=0.02, seed=5, differ=1.0, photos=[small_photo()], settle_seconds=600,
                            progress=lambda _: None)

    assert set(results) == {"off", "runpod"}
    for result in results.values():
        assert result["first"]["all"]["cases"] == 3 and len(result["outcomes"]) == 3
        assert result["simulator"]["providers"]["runpod"]["worker_seconds"] >= 0
        assert len(result["bookkeeping"]) == 5
    assert results["off"]["second"] is None and results["off"]["reads"] == []

    on = results["runpod"]
    recorded = sum(o["provider"] is not None for o in on["outcomes"])
    second = on["second"]
    assert second["answered"] == len(on["reads"]) == recorded
    assert sum(second["statuses"].values()) == recorded
    done = [r for r in on["reads"] if r["status"] == "done"]
    assert all(r["concordance"] in (DIFFER, DIFFER_RISK) for r in done)  # RunPod differs on every case
    assert all(r["concordance"] != AGREE for r in on["reads"])
    figures = headline.get("figures")
    if figures is not None:  # a reading was asked for (the first answers came within their tiny budgets)
        assert figures["provider"] == "runpod" and figures["agree"] == 0
        assert figures["read"] == len(done)
    assert set(headline["runpod_billed"]) == {"off", "runpod"}

    table = markdown(results, headline, 3)
    assert "| runpod | all | 3 |" in table and "RunPod's bill for the second reading" in table
