"""Canonical raw answers in the contract's XML shape (see /work/shared/answer-contract.md).

Shared by the fake server (its default reply), the provider tests and the page tests,
so every test agrees on what "a good answer" looks like.
"""

from __future__ import annotations

DISCLAIMER = "※ 이 결과는 참고용이며 최종 진단은 전문의의 진찰이 필요합니다."


def xml_answer(code: int, score: float | int | str, name: str, summary: str,
               similar: list[tuple[int, float | int | str, str]] | tuple = (), *, tail: str = "") -> str:
    """Build a contract answer; `similar` holds (code, score, name) triples; `tail` follows the XML."""
    items = "".join(f'<similar_label id_code="{c}" score="{s}">{n}</similar_label>' for c, s, n in similar)
    xml = (f'<root><label id_code="{code}" score="{score}">{name}</label><summary>{summary}</summary>'
           f"<similar_labels>{items}</similar_labels></root>")
    return xml + (f"\n{tail}" if tail else "")


VALID_SUMMARY = ("코 옆에 2 cm 크기의 진주양 광택을 띠는 구진이 있으며 표면에 모세혈관 확장이 관찰됩니다. "
                 "중심부에 얕은 궤양이 있어 기저세포암을 가장 먼저 의심합니다.")

# A full answer: basal cell carcinoma (code 1, malignant) at 78, two similar classes.
VALID = xml_answer(1, 78, "기저세포암", VALID_SUMMARY,
                   [(11, 12, "피지샘증식증"), (8, 6, "편평세포암")], tail=DISCLAIMER)

BENIGN_SUMMARY = ("경계가 명확한 갈색의 융기된 병변으로 표면이 거칠고 밀랍 같은 광택이 있습니다. "
                  "붙여 놓은 듯한 모양으로 지루각화증에 합당합니다.")

# A full benign answer: seborrheic keratosis (code 7) at 85.
BENIGN = xml_answer(7, 85, "지루각화증", BENIGN_SUMMARY,
                    [(14, 9, "흑색점"), (2, 6, "멜라닌세포모반")], tail=DISCLAIMER)

# VALID cut off by the token limit in the middle of the similar labels (no </root>).
TRUNCATED = VALID[:VALID.index("<similar_label ") + 30]

# A refusal: no XML at all.
REFUSAL = ("I'm sorry, but I can't provide a diagnosis of skin lesions. "
           "Please consult a dermatologist for an in-person examination.")


def fenced(answer: str) -> str:
    """`answer` the way chat models like to wrap it: prose and a ```xml fence."""
    xml, _, tail = answer.partition("</root>")
    return f"Here is my assessment:\n```xml\n{xml}</root>\n```\n{tail.strip()}"
