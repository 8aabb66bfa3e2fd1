"""The 15 lesion classes of the answer contract, and lookups by code or name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Risk(StrEnum):
    """How dangerous a lesion class is; the card flags malignant and premalignant ones."""

    MALIGNANT = "malignant"
    PREMALIGNANT = "premalignant"
    BENIGN = "benign"


@dataclass(frozen=True)
class LesionClass:
    """One of the 15 classes: its contract code, Korean and English names, and its risk."""

    code: int
    name_ko: str
    name_en: str
    risk: Risk


CLASSES: tuple[LesionClass, ...] = (
    LesionClass(0, "광선각화증", "Actinic keratosis", Risk.PREMALIGNANT),
    LesionClass(1, "기저세포암", "Basal cell carcinoma", Risk.MALIGNANT),
    LesionClass(2, "멜라닌세포모반", "Melanocytic nevus", Risk.BENIGN),
    LesionClass(3, "보웬병", "Bowen's disease (SCC in situ)", Risk.PREMALIGNANT),
    LesionClass(4, "비립종", "Milium", Risk.BENIGN),
    LesionClass(5, "사마귀", "Wart (verruca)", Risk.BENIGN),
    LesionClass(6, "악성흑색종", "Malignant melanoma", Risk.MALIGNANT),
    LesionClass(7, "지루각화증", "Seborrheic keratosis", Risk.BENIGN),
    LesionClass(8, "편평세포암", "Squamous cell carcinoma", Risk.MALIGNANT),
    LesionClass(9, "표피낭종", "Epidermal cyst", Risk.BENIGN),
    LesionClass(10, "피부섬유종", "Dermatofibroma", Risk.BENIGN),
    LesionClass(11, "피지샘증식증", "Sebaceous hyperplasia", Risk.BENIGN),
    LesionClass(12, "혈관종", "Hemangioma", Risk.BENIGN),
    LesionClass(13, "화농 육아종", "Pyogenic granuloma", Risk.BENIGN),
    LesionClass(14, "흑색점", "Lentigo", Risk.BENIGN),
)

_BY_CODE = {c.code: c for c in CLASSES}


def _fold(name: str) -> str:
    # Models vary spacing, case and punctuation ("화농육아종", "basal-cell carcinoma").
    return re.sub(r"[\s\-_'’().,]+", "", name).casefold()


def _aliases(c: LesionClass) -> set[str]:
    short_en = re.sub(r"\s*\(.*\)", "", c.name_en)
    inner = re.findall(r"\((.*?)\)", c.name_en)
    return {_fold(n) for n in (c.name_ko, c.name_en, short_en, *inner)}


_BY_NAME = {alias: c for c in CLASSES for alias in _aliases(c)}


def by_code(code: int) -> LesionClass | None:
    """The class with this contract code, or None when the code is not one of the 15."""
    return _BY_CODE.get(code)


def by_name(name: str) -> LesionClass | None:
    """The class a Korean or English name refers to, ignoring case, spacing and punctuation."""
    return _BY_NAME.get(_fold(name)) if name else None
