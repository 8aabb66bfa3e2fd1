"""Whether a helper's answer (refine, explain) has the shape asked for: plain prose, not markup or a diagnosis.

A model asked for a description sometimes answers in the assessment's XML, or wraps its text in a code
fence: offered as "use this description", that would paste XML into the clinician's case. The check is
here, below the engine, so the pages and the HTTP API refuse the same answers with the same message.
"""

from __future__ import annotations

import re

from domain.messages import Message

# Longest plain explanation accepted: the prompt asks for at most five short sentences, which is far less.
EXPLAIN_MAX_CHARS = 2000

# Any XML or HTML tag, opening or closing (<root>, </summary>, <br/>, <label id_code="1">); not "< 5 mm".
_TAG = re.compile(r"</?\s*[A-Za-z][\w:.-]*(\s[^<>]*)?/?>")
# The assessment contract's own words (its XML may come with the brackets lost or escaped).
_CONTRACT = re.compile(r"id_code\s*=|similar_labels?\b", re.IGNORECASE)
# A line that announces a diagnosis: a description describes, it never diagnoses (the refine prompt says so).
_DIAGNOSIS_LINE = re.compile(r"^\s*(diagnosis|label|진단명?)\s*[:：]", re.IGNORECASE | re.MULTILINE)


def _markup(text: str) -> bool:
    """True for text in a form other than prose: tags, a code fence, JSON, the assessment contract's words."""
    return (bool(_TAG.search(text)) or "```" in text or text.lstrip().startswith("{")
            or bool(_CONTRACT.search(text)))


def refine_problem(text: str, max_chars: int) -> Message | None:
    """Why `text` is not a usable refined description (None when it is).

    A description is plain prose, not empty, at most `max_chars` long (what an assessment accepts),
    with no markup and no diagnosis in the assessment's form.
    """
    shaped = text.strip()
    if not shaped or len(shaped) > max_chars or _markup(shaped) or _DIAGNOSIS_LINE.search(shaped):
        return Message("assist.bad_refine")
    return None


def explain_problem(text: str) -> Message | None:
    """Why `text` is not a usable patient explanation (None when it is): empty, markup or far too long."""
    shaped = text.strip()
    if not shaped or len(shaped) > EXPLAIN_MAX_CHARS or _markup(shaped):
        return Message("assist.bad_explain")
    return None
