"""Stored times (epoch seconds, UTC) as a reader sees them: in her time zone, and always saying which.

A clinician in Seoul reading "14:05" must not have to guess whether that is her clock or the server's: every time
shown carries its zone ("2026-12-07 14:05 KST", or "UTC+05:30" where the zone has no letters of its own), and every
time exported is ISO 8601 with its offset ("2026-12-07T14:05:00+09:00"), which a spreadsheet or a script reads back
to the same instant. Nothing here changes what is stored: the store keeps epoch seconds.

A zone is a `tzinfo` (an IANA zone from `zone_named`, or a fixed offset), or None for this machine's own zone
(the command line's default), whose offset is taken per instant, so summer and winter times are both right.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A zone's own abbreviation is shown when it is letters ("KST", "EST", "CET"); some zones have only "+04".
_LETTERS = re.compile(r"[A-Z]{2,5}")
_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")


def zone_named(name: str | None) -> tzinfo | None:
    """The IANA time zone `name` ("Asia/Seoul", "America/New_York", "UTC"), or None when it is empty or unknown."""
    name = (name or "").strip()
    if not name or len(name) > 64 or not _NAME.fullmatch(name):  # never a path (ZoneInfo reads files by name)
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_offset_minutes(minutes_behind_utc: int) -> tzinfo:
    """A fixed zone from a browser's `Date.getTimezoneOffset()`: minutes *behind* UTC (-540 is UTC+09:00)."""
    return timezone_of(timedelta(minutes=-minutes_behind_utc))


def timezone_of(offset: timedelta) -> tzinfo:
    """A fixed zone `offset` from UTC (named "UTC+09:00", or "UTC" at zero)."""
    return UTC if not offset else timezone(offset)


def moment(stamp: float, zone: tzinfo | None) -> datetime:
    """Epoch seconds as an aware date and time in `zone` (None: this machine's zone at that instant)."""
    in_utc = datetime.fromtimestamp(stamp, UTC)
    return in_utc.astimezone(zone) if zone is not None else in_utc.astimezone()


def zone_label(when: datetime) -> str:
    """How `when`'s zone is written after it: its abbreviation when that is letters ("KST"), else its offset
    ("UTC+05:30"; "UTC" at zero)."""
    name = when.tzname() or ""
    if _LETTERS.fullmatch(name):
        return name
    offset = when.utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    sign = "+" if offset > timedelta(0) else "-"
    hours, rest = divmod(abs(int(offset.total_seconds())), 3600)
    return f"UTC{sign}{hours:02d}:{rest // 60:02d}"


def shown(stamp: float, zone: tzinfo | None, *, seconds: bool = False) -> str:
    """Epoch seconds as a reader's date and time with its zone: "2026-12-07 14:05 KST" (with `seconds`, 14:05:09)."""
    when = moment(stamp, zone)
    return f"{when:%Y-%m-%d %H:%M{':%S' if seconds else ''}} {zone_label(when)}"


def iso(stamp: float, zone: tzinfo | None = UTC) -> str:
    """Epoch seconds as ISO 8601 to the second with the offset of `zone` (default UTC, "+00:00"; None: this
    machine's zone): "2026-12-07T14:05:00+09:00"."""
    return moment(stamp, zone).isoformat(timespec="seconds")


def start_of_day(day: date, zone: tzinfo | None) -> float:
    """Epoch seconds of the midnight that starts `day` in `zone` (None: this machine's zone)."""
    midnight = datetime.combine(day, datetime.min.time())
    # A naive time's astimezone() reads it on this machine's clock.
    return (midnight.replace(tzinfo=zone) if zone is not None else midnight.astimezone()).timestamp()


__all__ = ["iso", "moment", "shown", "start_of_day", "timezone_of", "zone_label", "zone_named",
           "zone_offset_minutes"]
