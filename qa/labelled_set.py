"""From daily QA to a labelled set: the reviewed Provider QA cases as a cases CSV and a ZIP of their photos.

    found = labelled_set(history, reviews, since=None, user=None)
    found.csv_bytes()       # id,text,image,expected,label_basis,label_reviewer,label_note (+ expected_name,
                            # recorded_at, reviewed_at)
    found.zip_bytes()       # <case id>.jpg for every case that has a photo
    found.left_out          # reason -> case ids that could not be labelled

Both files are what `cli.py batch cases.csv --images photos.zip` and the Batch tab read back
(qa/batch_input.py): the clinic re-runs the cases it reviewed as a batch.

The expected class of a case comes from its reviews (the latest review of each of its answers):
a review that gives an expected class names that class; a review marking an answer correct names
that answer's class. When they disagree, the newest review that names a class wins. A case is left
out when no review names a class (only "incorrect" marks without an expected class), or when a newer
"incorrect" mark rejects the class the winning review names. A clinician's arbitration between two
readings (double reading) wins over any review.

Each label carries its provenance (domain/provenance.py), written as the columns label_basis,
label_reviewer and label_note, which the batch reads and carries to results.csv: `histology` or
`clinician` when the reviewer said so on the review form, `arbitrated` for an arbitration, and
`confirmed_answer` for a label that only repeats the provider's own class with no other basis given
(a "correct" mark, or an expected class equal to the answer's). The reviewer is who reviewed (or
arbitrated), the note what they wrote ("biopsy: melanoma").

A photo case goes out with the shrunk photo its comparison sent, which the history keeps only for
QA cases and only with HISTORY_KEEP_IMAGES (`History.photo`). A photo case whose photo was not
kept is left out rather than sent on its text alone: that would be another case than the one reviewed.

The text is written exactly as recorded (no spreadsheet apostrophe guard), since the batch sends it
to the models as it stands: open the file with a spreadsheet's import, not by double-clicking it.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.classes import LesionClass, by_code
from domain.provenance import ARBITRATED, BASES, MAX_NOTE_CHARS, MAX_REVIEWER_CHARS, label_basis
from storage.history import HistoryStore
from storage.reviews import ReviewStore

# The cases CSV: the batch's four columns first (qa/batch_input.COLUMNS), then the label's provenance, which the batch
# carries to results.csv (qa/case_columns.py), then what the batch ignores and a person reading the file wants: the
# class's name, when the case was seen and reviewed.
CSV_COLUMNS = ("id", "text", "image", "expected", "label_basis", "label_reviewer", "label_note", "expected_name",
               "recorded_at", "reviewed_at")

# Why a reviewed case is not in the set (`LabelledSet.left_out`).
NO_CLASS = "no_class"          # only "incorrect" marks, none with an expected class
CONTRADICTED = "contradicted"  # a newer "incorrect" mark rejects the class an older review names
NO_PHOTO = "no_photo"          # a photo case whose photo was not kept (HISTORY_KEEP_IMAGES off at the time)
UNREADABLE = "unreadable"      # sealed with a DATA_ENCRYPTION_KEY this process does not hold
REASONS = (NO_CLASS, CONTRADICTED, NO_PHOTO, UNREADABLE)


@dataclass(frozen=True)
class LabelledCase:
    """One reviewed case with its expected class, ready to be a row of the cases CSV."""

    id: str                      # the QA case id (one comparison), else the assessment's id
    text: str
    expected: LesionClass
    basis: str                   # domain/provenance.BASES
    recorded_at: float
    reviewed_at: float           # the review that decided the class
    photo: bytes | None = field(default=None, repr=False)
    reviewer: str = ""           # who reviewed (or arbitrated)
    note: str = ""               # what they wrote with it

    @property
    def image(self) -> str:
        """The photo's file name in the ZIP and the CSV ('' for a text case)."""
        return f"{self.id}.jpg" if self.photo is not None else ""


@dataclass(frozen=True)
class LabelledSet:
    """The labelled cases (oldest first), and the reviewed cases left out, by reason."""

    cases: tuple[LabelledCase, ...]
    left_out: dict[str, tuple[str, ...]]  # reason (REASONS) -> case ids

    @property
    def photos(self) -> int:
        """How many cases go with a photo."""
        return sum(c.photo is not None for c in self.cases)

    @property
    def bases(self) -> dict[str, int]:
        """How many labels rest on each basis (domain/provenance.BASES order; only those that occur)."""
        return {b: n for b in BASES if (n := sum(c.basis == b for c in self.cases))}

    @property
    def left_out_count(self) -> int:
        """How many reviewed cases are not in the set."""
        return sum(len(ids) for ids in self.left_out.values())

    def csv_bytes(self) -> bytes:
        """The cases CSV (UTF-8 with the BOM Excel needs for Korean; the batch reads it either way)."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for case in self.cases:
            # One line each, within what the batch accepts (an older note may be longer: cut, not refused there).
            writer.writerow([case.id, case.text, case.image, case.expected.code, case.basis,
                             " ".join(case.reviewer.split())[:MAX_REVIEWER_CHARS],
                             " ".join(case.note.split())[:MAX_NOTE_CHARS], case.expected.name_en,
                             _iso(case.recorded_at), _iso(case.reviewed_at)])
        return out.getvalue().encode("utf-8-sig")

    def zip_bytes(self) -> bytes:
        """The photos, one `<case id>.jpg` per case with a photo, stored as they are (a JPEG does not deflate)."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for case in self.cases:
                if case.photo is None:
                    continue
                stamp = datetime.fromtimestamp(max(case.recorded_at, 315532800), UTC)  # a ZIP's dates start in 1980
                info = zipfile.ZipInfo(case.image, date_time=stamp.timetuple()[:6])
                info.external_attr = 0o600 << 16
                archive.writestr(info, case.photo)
        return out.getvalue()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class _Label:
    lesion: LesionClass
    basis: str
    at: float
    reviewer: str = ""
    note: str = ""


def _decide(answers: Iterable[tuple[dict, dict]]) -> _Label | str:
    """The expected class of one case, with its provenance, from (assessment row, its latest review) pairs, or the
    reason it has none (NO_CLASS, CONTRADICTED)."""
    rejected: set[int] = set()
    for row, review in sorted(answers, key=lambda p: (p[1]["created_at"], p[1]["id"]), reverse=True):
        code = review.get("expected_code")
        if code is None and review["verdict"] == "correct" and row.get("label_code") is not None:
            code = row["label_code"]
        if code is not None:
            lesion = by_code(code)
            if lesion is None or code in rejected:
                return CONTRADICTED
            return _Label(lesion, label_basis(review.get("basis"), code, row.get("label_code")), review["created_at"],
                          review.get("reviewer") or "", review.get("note") or "")
        if review["verdict"] == "incorrect" and row.get("label_code") is not None:
            rejected.add(row["label_code"])  # a newer mark saying this class is wrong
    return NO_CLASS


def labelled_set(history: HistoryStore, reviews: ReviewStore, *, since: float | None = None,
                 user: str | None = None, arbitrations: Iterable[dict] = ()) -> LabelledSet:
    """Every reviewed or arbitrated case recorded from `since` on (epoch seconds; None: all), of `user` when given
    (None: every user's), with its expected class and photo; the cases that cannot be labelled are counted in
    `left_out`.

    `arbitrations` are the clinicians' decisions between two readings (`Readings.arbitrated()`: assessment_id,
    code, at): such a case takes the decided class, basis `arbitrated`, over any review. Reads the latest review of
    every assessment and each reviewed assessment once. May raise `storage.database.StoreUnavailable`.
    """
    def wanted(row: dict | None) -> bool:
        return row is not None and (since is None or row["created_at"] >= since) and (
            user is None or row.get("user") == user)

    cases: dict[str, list[tuple[dict, dict]]] = {}
    for assessment_id, review in reviews.latest().items():
        row = history.get(assessment_id)
        if row is None or not wanted(row):
            continue
        cases.setdefault(row.get("qa_case") or row["id"], []).append((row, review))
    arbitrated: dict[str, _Label] = {}
    for decision in arbitrations:
        row = history.get(decision["assessment_id"])
        if row is None or not wanted(row) or (lesion := by_code(decision["code"])) is None:
            continue
        case_id = row.get("qa_case") or row["id"]
        arbitrated[case_id] = _Label(lesion, ARBITRATED, decision["at"], decision.get("by") or "",
                                     decision.get("note") or "")
        if case_id not in cases:
            cases[case_id] = [(row, {})]
    labelled: list[LabelledCase] = []
    left_out: dict[str, list[str]] = {reason: [] for reason in REASONS}
    for case_id, answers in cases.items():
        rows = [row for row, _ in answers]
        if any(row.get("unreadable") for row in rows):
            left_out[UNREADABLE].append(case_id)
            continue
        decided = arbitrated.get(case_id) or _decide(answers)
        if isinstance(decided, str):
            left_out[decided].append(case_id)
            continue
        photo = None
        if any(row["kind"] == "image" for row in rows):
            photo = next((p for p in (history.photo(row["id"]) for row in rows) if p is not None), None)
            if photo is None:
                left_out[NO_PHOTO].append(case_id)
                continue
        labelled.append(LabelledCase(id=case_id, text=rows[0]["text"] or "", expected=decided.lesion,
                                     basis=decided.basis, recorded_at=min(row["created_at"] for row in rows),
                                     reviewed_at=decided.at, photo=photo, reviewer=decided.reviewer,
                                     note=decided.note))
    labelled.sort(key=lambda c: (c.recorded_at, c.id))
    return LabelledSet(cases=tuple(labelled),
                       left_out={reason: tuple(sorted(ids)) for reason, ids in left_out.items() if ids})
