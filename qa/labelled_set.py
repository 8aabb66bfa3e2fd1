"""From daily QA to a labelled set: the reviewed Provider QA cases as a cases CSV and a ZIP of their photos.

    found = labelled_set(history, reviews, since=None, user=None)
    found.csv_bytes()       # id,text,image,expected (+ expected_name, basis, recorded_at, reviewed_at)
    found.zip_bytes()       # <case id>.jpg for every case that has a photo
    found.left_out          # reason -> case ids that could not be labelled

Both files are what `cli.py batch cases.csv --images photos.zip` and the Batch tab read back
(qa/batch_input.py): the clinic re-runs the cases it reviewed as a batch.

The expected class of a case comes from its reviews (the latest review of each of its answers):
a review that gives an expected class names that class ("reviewer"); a review marking an answer
correct names that answer's class ("confirmed"). When they disagree, the newest review that names
a class wins. A case is left out when no review names a class (only "incorrect" marks without an
expected class), or when a newer "incorrect" mark rejects the class the winning review names.

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
from storage.history import HistoryStore
from storage.reviews import ReviewStore

# The cases CSV: the batch's four columns first (providers/batch_input.COLUMNS), then what the batch ignores and
# a person reading the file wants: the class's name, where the label came from, when the case was seen and reviewed.
CSV_COLUMNS = ("id", "text", "image", "expected", "expected_name", "basis", "recorded_at", "reviewed_at")

CONFIRMED = "confirmed"  # a review marked the answer correct: its class is the expected one
REVIEWER = "reviewer"    # a reviewer gave the expected class
ARBITRATED = "arbitrated"  # a clinician decided between two readings that differed (double reading)

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
    basis: str                   # CONFIRMED, REVIEWER or ARBITRATED
    recorded_at: float
    reviewed_at: float           # the review that decided the class
    photo: bytes | None = field(default=None, repr=False)

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
    def left_out_count(self) -> int:
        """How many reviewed cases are not in the set."""
        return sum(len(ids) for ids in self.left_out.values())

    def csv_bytes(self) -> bytes:
        """The cases CSV (UTF-8 with the BOM Excel needs for Korean; the batch reads it either way)."""
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for case in self.cases:
            writer.writerow([case.id, case.text, case.image, case.expected.code, case.expected.name_en, case.basis,
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


def _decide(answers: Iterable[tuple[dict, dict]]) -> tuple[LesionClass, str, float] | str:
    """The expected class of one case from (assessment row, its latest review) pairs: (class, basis, reviewed at),
    or the reason it has none (NO_CLASS, CONTRADICTED)."""
    rejected: set[int] = set()
    for row, review in sorted(answers, key=lambda p: (p[1]["created_at"], p[1]["id"]), reverse=True):
        code, basis = review.get("expected_code"), REVIEWER
        if code is None and review["verdict"] == "correct" and row.get("label_code") is not None:
            code, basis = row["label_code"], CONFIRMED
        if code is not None:
            lesion = by_code(code)
            if lesion is None or code in rejected:
                return CONTRADICTED
            return lesion, basis, review["created_at"]
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
    arbitrated: dict[str, tuple[LesionClass, str, float]] = {}
    for decision in arbitrations:
        row = history.get(decision["assessment_id"])
        if row is None or not wanted(row) or (lesion := by_code(decision["code"])) is None:
            continue
        case_id = row.get("qa_case") or row["id"]
        arbitrated[case_id] = (lesion, ARBITRATED, decision["at"])
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
        lesion, basis, reviewed_at = decided
        labelled.append(LabelledCase(id=case_id, text=rows[0]["text"] or "", expected=lesion, basis=basis,
                                     recorded_at=min(row["created_at"] for row in rows), reviewed_at=reviewed_at,
                                     photo=photo))
    labelled.sort(key=lambda c: (c.recorded_at, c.id))
    return LabelledSet(cases=tuple(labelled),
                       left_out={reason: tuple(sorted(ids)) for reason, ids in left_out.items() if ids})
