"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Patient text and model output end up in exports that clinicians open in Excel; a cell
starting with =, +, -, @ (or a tab or carriage return) would be taken for a formula.
"""

from __future__ import annotations

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Put before a CSV's first byte: with it, Excel (what clinicians and reviewers open exports in) reads the
# Korean text as UTF-8 rather than the system code page.
BOM = "\ufeff"


def safe_cell(value):
    """`value` unchanged, except text that a spreadsheet would evaluate, which gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def safe_row(row: dict) -> dict:
    """Every cell of `row` through `safe_cell`."""
    return {key: safe_cell(value) for key, value in row.items()}
