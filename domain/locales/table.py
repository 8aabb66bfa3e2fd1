"""One language's table put together from its parts (one module per area of the app)."""

from __future__ import annotations

from collections.abc import Mapping


def merged(*parts: Mapping[str, str]) -> dict[str, str]:
    """The parts as one flat table; a key two parts both define is a mistake, not an override."""
    table: dict[str, str] = {}
    for part in parts:
        if twice := table.keys() & part.keys():
            raise ValueError(f"keys defined twice: {', '.join(sorted(twice))}")
        table.update(part)
    return table
