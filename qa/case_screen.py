"""Before a batch runs: the same case twice is run once, and a case labelled two ways is not run at all.

    kept, duplicates, conflicts = screen(cases, photos)
    duplicates   # [Duplicate(kept="a", ids=("a-copy",))]: the same text and photo as "a", counted once
    conflicts    # [Conflict(ids=("b", "b2"), labels=(1, 7))]: one case, two expected classes: left out

Two rows are the same case when their description (spaces aside) and their photo (its bytes) are the same.
A labelled set exported twice, or a case reviewed in two QA comparisons, would otherwise count twice and
weigh double in every figure; a case whose rows disagree on the expected class has no truth to score
against. Both are listed with their ids (the command line, the Batch tab, `BatchReport.duplicates` and
`BatchReport.conflicts`). Rows that cannot run (`problem` set) are left as they are: they are reported as
failures. Photos are compared by size first, and only photos of equal size (with the same text) are read
(a ZIP's entries by their CRC-32, without inflating them).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from qa.batch_input import BatchCase, DirectoryPhotos, PhotoRefused, ZipPhotos


@dataclass(frozen=True)
class Duplicate:
    """Rows that are one case: `kept` runs, `ids` (the other rows) do not."""

    kept: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class Conflict:
    """Rows of one case that give different expected classes (`labels`, class codes): none of them runs."""

    ids: tuple[str, ...]
    labels: tuple[int, ...]


def _text(case: BatchCase) -> str:
    return " ".join(case.text.split())


def _size(photos: Mapping[str, bytes], key: str) -> int | str:
    """A cheap first look at a photo: its size (a string for one that cannot be read: it matches nothing else)."""
    try:
        if isinstance(photos, ZipPhotos):
            return photos.entry_size(key)
        if isinstance(photos, DirectoryPhotos):
            return os.path.getsize(photos.root / key)
        return len(photos[key])
    except (KeyError, OSError, PhotoRefused):
        return f"unreadable:{key}"


def _digest(photos: Mapping[str, bytes], key: str) -> str:
    """What a photo holds: a ZIP entry's CRC-32 (read from the archive's directory), else SHA-256 of its bytes."""
    try:
        if isinstance(photos, ZipPhotos):
            return f"crc:{photos.entry_crc(key)}"
        return hashlib.sha256(photos[key]).hexdigest()
    except (KeyError, OSError, PhotoRefused):
        return f"unreadable:{key}"


def screen(cases: Sequence[BatchCase], photos: Mapping[str, bytes] | None = None
           ) -> tuple[list[BatchCase], list[Duplicate], list[Conflict]]:
    """The cases to run (in their order), the duplicates counted once and the conflicting cases left out."""
    photos = photos if photos is not None else {}
    rough: dict[tuple[str, object], list[int]] = {}
    for i, case in enumerate(cases):
        if case.valid:
            rough.setdefault((_text(case), _size(photos, case.photo_key) if case.photo_key else None), []).append(i)
    groups: list[list[int]] = []
    for (_text_key, size), members in rough.items():
        if len(members) < 2 or size is None:
            groups.append(members)
            continue
        fine: dict[str, list[int]] = {}
        for i in members:
            fine.setdefault(_digest(photos, cases[i].photo_key or ""), []).append(i)
        groups += fine.values()
    dropped: set[int] = set()
    duplicates: list[Duplicate] = []
    conflicts: list[Conflict] = []
    for members in sorted(groups):
        if len(members) < 2:
            continue
        labels = tuple(sorted({e.code for i in members if (e := cases[i].expected) is not None}))
        if len(labels) > 1:
            conflicts.append(Conflict(tuple(cases[i].id for i in members), labels))
            dropped.update(members)
            continue
        kept = next((i for i in members if cases[i].expected is not None), members[0])
        duplicates.append(Duplicate(cases[kept].id, tuple(cases[i].id for i in members if i != kept)))
        dropped.update(i for i in members if i != kept)
    return [c for i, c in enumerate(cases) if i not in dropped], duplicates, conflicts


def screen_json(duplicates: Sequence[Duplicate], conflicts: Sequence[Conflict]) -> dict[str, list[dict]]:
    """Them as metrics.json holds them (`screened`): {"duplicates": [{kept, ids}], "conflicts": [{ids, labels}]}."""
    return {"duplicates": [{"kept": d.kept, "ids": list(d.ids)} for d in duplicates],
            "conflicts": [{"ids": list(c.ids), "labels": list(c.labels)} for c in conflicts]}


def screen_said(duplicates: Sequence[Duplicate], conflicts: Sequence[Conflict], say: Callable[..., str]) -> list[str]:
    """Them in a language, one sentence each, by id: `say(key, **values)` is the page's `t` or the report's `Words`."""
    return ([say("qa.batch.duplicate", ids=", ".join(d.ids), kept=d.kept) for d in duplicates]
            + [say("qa.batch.conflict", ids=", ".join(c.ids), labels=", ".join(map(str, c.labels)))
               for c in conflicts])


def screen_lines(duplicates: Sequence[Duplicate], conflicts: Sequence[Conflict]) -> list[str]:
    """What the command line says about them, one line each (English, as the report files)."""
    lines = [f"duplicate: {', '.join(d.ids)} {'is' if len(d.ids) == 1 else 'are'} the same case as {d.kept} "
             "(same text and photo): counted once" for d in duplicates]
    lines += [f"conflict: {', '.join(c.ids)} are one case labelled {' and '.join(map(str, c.labels))}: left out"
              for c in conflicts]
    return lines
