"""The Batch tab's list of the rows that did not run because they repeat a case or label it two ways
(qa/case_screen.py), by id: the reviewer finds them in the cases file and fixes them."""

from __future__ import annotations

import streamlit as st

from qa.batch_metrics import BatchReport
from ui import plain
from ui.i18n import t


def screened(report: BatchReport) -> None:
    """One line per group of duplicate rows (counted once) and per conflicting case (left out); nothing when none."""
    if not report.duplicates and not report.conflicts:
        return
    with st.container(key="batch_screened"):
        for d in report.duplicates:
            plain.text(t("qa.batch.duplicate", ids=", ".join(d.ids), kept=d.kept))  # ids: as written
        for c in report.conflicts:
            plain.text(t("qa.batch.conflict", ids=", ".join(c.ids), labels=", ".join(map(str, c.labels))))
