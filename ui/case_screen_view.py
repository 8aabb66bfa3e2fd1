"""The Batch tab's list of the rows that did not run because they repeat a case or label it two ways
(qa/case_screen.py), by id: the reviewer finds them in the cases file and fixes them."""

from __future__ import annotations

import streamlit as st

from qa.batch_metrics import BatchReport
from qa.case_screen import screen_said
from ui import plain
from ui.i18n import t


def screened(report: BatchReport) -> None:
    """One line per group of duplicate rows (counted once) and per conflicting case (left out); nothing when none."""
    if not report.duplicates and not report.conflicts:
        return
    with st.container(key="batch_screened"):
        for line in screen_said(report.duplicates, report.conflicts, t):
            plain.text(line)  # the ids as the cases file wrote them
