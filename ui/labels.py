"""How the app's things are named and coloured on screen: a provider's title, a class's name, a risk's colour.

One place for each, so that every page and the card say the same thing the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from domain.classes import LesionClass, Risk
from domain.demo import DEMO_PROVIDER
from ui.i18n import lang, t

if TYPE_CHECKING:
    from engine.core import Engine

# Streamlit's colour names, for `st.badge(color=...)` and Markdown's `:red-badge[...]`.
BadgeColour = Literal["red", "orange", "green"]
RISK_COLOUR: dict[Risk, BadgeColour] = {Risk.MALIGNANT: "red", Risk.PREMALIGNANT: "orange", Risk.BENIGN: "green"}


def provider_titles(engine: Engine) -> dict[str, str]:
    """Every provider's title by name ("runpod" → "RunPod"), configured or not, in the engine's order; then the demo
    pack's, which says its answers are examples."""
    return {**{name: p.title for name, p in engine.providers.items()}, DEMO_PROVIDER: t("demo.provider")}


def provider_title(engine: Engine, name: str) -> str:
    """The provider's title; its name as given when the engine does not know it (an old record, say)."""
    if name == DEMO_PROVIDER:
        return t("demo.provider")
    provider = engine.providers.get(name)
    return provider.title if provider else name


def lesion_names(lesion: LesionClass) -> tuple[str, str]:
    """The class's name in the UI language, then in the other language."""
    return (lesion.name_ko, lesion.name_en) if lang() == "ko" else (lesion.name_en, lesion.name_ko)


def lesion_name(lesion: LesionClass) -> str:
    """The class's name in the UI language."""
    return lesion_names(lesion)[0]
