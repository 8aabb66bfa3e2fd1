"""Reads a model's answer in the contract's XML, surviving what real models do to it.

Tolerant by design: answers arrive fenced, wrapped in prose, with percent signs,
English names, missing sections or cut off by the token limit. Nothing here raises;
what cannot be read in full comes back with `complete=False` and the reasons.
"""

from __future__ import annotations

import html
import re

from domain.answer import ParsedAnswer, ScoredClass
from domain.classes import by_code, by_name
from domain.messages import Message, Value

_LABEL = re.compile(r"<label\b([^>]*)>(.*?)</label\s*>", re.S | re.I)
_SIMILAR = re.compile(r"<similar_label\b([^>]*)>(.*?)</similar_label\s*>", re.S | re.I)
_SUMMARY_OPEN = re.compile(r"<summary\b[^>]*>", re.I)
_SUMMARY_CLOSE = re.compile(r"</summary\s*>", re.I)
_ROOT_CLOSE = re.compile(r"</root\s*>", re.I)
# At most 9 digits: int() refuses strings of over 4300 digits, and no code is that long.
_CODE = re.compile(r"""id_code\s*=\s*["']?\s*(-?\d{1,9})(?!\d)""", re.I)
_SCORE = re.compile(r"""score\s*=\s*["']?\s*(-?\d+(?:\.\d+)?)\s*%?""", re.I)
_PARTIAL_TAG = re.compile(r"<[^>]*$")
_PARTIAL_ENTITY = re.compile(r"&#?\w*$")  # "&am" of a streaming "&amp;"


def _clean(text: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", text)).strip()


def _scored(attrs: str, name: str, where: tuple[str, str], problems: list[Message]) -> ScoredClass | None:
    part, rank = where

    def problem(message_id: str, **values: Value) -> None:
        problems.append(Message(message_id, {"part": part, "rank": rank, **values}))

    name = _clean(name)
    code_match, score_match = _CODE.search(attrs), _SCORE.search(attrs)
    by_its_code = by_code(int(code_match.group(1))) if code_match else None
    by_its_name = by_name(name)
    lesion = by_its_code or by_its_name
    if code_match and by_its_code is None and by_its_name:
        problem("answer.code_not_listed", code=code_match.group(1))
    if lesion is None:
        problem("answer.unknown_class")
        return None
    if by_its_code and by_its_name and by_its_code != by_its_name:
        # The fine-tuned model emits the code first and was trained on it; trust it, but say so.
        problem("answer.name_mismatch", code=by_its_code.code)
    elif by_its_code and name and not by_its_name:
        problem("answer.unknown_name", code=by_its_code.code)
    if score_match is None:
        problem("answer.no_score")
        return None
    score = float(score_match.group(1))
    if not 0 <= score <= 100:
        problem("answer.score_clamped", score=score)
        score = min(max(score, 0.0), 100.0)
    return ScoredClass(lesion, score)


def _summary(raw: str) -> tuple[str, bool]:
    opening = _SUMMARY_OPEN.search(raw)
    if not opening:
        return "", False
    rest = raw[opening.end():]
    closing = _SUMMARY_CLOSE.search(rest)
    if closing:
        return _clean(rest[:closing.start()]), True
    rest = _PARTIAL_TAG.sub("", rest.split("<similar_labels", 1)[0])
    return _clean(_PARTIAL_ENTITY.sub("", rest)), False


def parse_answer(raw: str) -> ParsedAnswer:
    """Parse one raw answer; `complete` is True only when every required part was read."""
    problems: list[Message] = []
    raw = raw or ""
    label_match = _LABEL.search(raw)
    label = _scored(label_match.group(1), label_match.group(2), ("label", ""), problems) if label_match else None
    if not label_match:
        problems.append(Message("answer.no_label" if "<" in raw else "answer.no_xml"))

    summary, summary_closed = _summary(raw)
    if not summary_closed:
        problems.append(Message("answer.no_summary"))

    similar: list[ScoredClass] = []
    for i, m in enumerate(_SIMILAR.finditer(raw), start=1):
        item = _scored(m.group(1), m.group(2), ("similar", f" {i}"), problems)
        if item and (label is None or item.lesion != label.lesion) and item.lesion not in {s.lesion for s in similar}:
            similar.append(item)
    similar.sort(key=lambda s: s.score, reverse=True)

    root_closed = bool(_ROOT_CLOSE.search(raw))
    if label_match and not root_closed:
        problems.append(Message("answer.cut_off"))

    complete = label is not None and summary_closed and root_closed
    return ParsedAnswer(label=label, summary=summary, similar=tuple(similar), complete=complete,
                        problems=tuple(str(p) for p in problems), problem_messages=tuple(problems))


def partial_summary(raw: str) -> str:
    """The findings written so far in a still-streaming answer ('' before `<summary>` arrives)."""
    return _summary(raw)[0]
