"""Times on the pages in the reader's own time zone, the one her browser reports, always labelled with it.

The server may run in UTC in a data centre while the clinic is in Seoul: a job "submitted 05:05" that she sent at
14:05 would send her looking for the wrong case. The browser tells Streamlit its IANA zone (`st.context.timezone`,
"Asia/Seoul"), else its offset from UTC; without either (a client that is not a browser) the server's own zone
is used, and still named. Stored times stay epoch seconds in UTC (utils/times.py).
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

import streamlit as st

from utils.times import moment, shown, zone_named, zone_offset_minutes


def viewer_zone() -> tzinfo | None:
    """The reader's time zone: her browser's IANA zone, else its UTC offset; None (the server's) without either."""
    if (zone := zone_named(st.context.timezone)) is not None:
        return zone
    offset = st.context.timezone_offset
    return zone_offset_minutes(offset) if offset is not None else None


def when(stamp: float, *, seconds: bool = False) -> str:
    """Epoch seconds as the reader's date and time with her zone: "2026-12-07 14:05 KST"."""
    return shown(stamp, viewer_zone(), seconds=seconds)


def viewer_today() -> date:
    """Today's date on the reader's calendar (for the name of a file she downloads)."""
    return moment(datetime.now().timestamp(), viewer_zone()).date()


__all__ = ["viewer_today", "viewer_zone", "when"]
