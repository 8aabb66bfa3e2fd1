"""The photo picker: a browser component that shrinks the photo on the device before it travels.

The component (`ui/components/photo_picker.*`, served by this app, nothing from a CDN) decodes the file with its
EXIF orientation applied, shrinks it to IMAGE_MAX_SIDE and encodes a JPEG at IMAGE_JPEG_QUALITY, so a 3 MB phone
photo crosses the network as ~40 KB with no EXIF or GPS. A file the browser cannot decode (HEIC outside Safari) is
sent whole instead and shrunk on the server. Either way what arrives is untrusted: `read_pick` bounds and decodes it
and the caller passes the bytes through the engine's usual checks (type sniffing, size and pixel limits,
re-encoding), so a modified client gains nothing.

The value travels as a one-shot trigger, not as widget state: state would be sent back with every rerun of the
session, the photo with it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import streamlit as st

from domain.messages import Message
from ui.i18n import message_text, t
from utils.images import ImageRejected, too_large, too_many_pixels

_ASSETS = Path(__file__).parent / "components"
_COMPONENT = st.components.v2.component(
    "lesion_photo_picker",
    html=(_ASSETS / "photo_picker.html").read_text(encoding="utf-8"),
    css=(_ASSETS / "photo_picker.css").read_text(encoding="utf-8"),
    js=(_ASSETS / "photo_picker.js").read_text(encoding="utf-8"),
)

# Why the browser did not shrink a photo it sent whole; each has a line in the UI's language.
FALLBACK_REASONS = ("cannot_read", "unsupported")
_LABELS = ("choose", "camera", "drop", "remove", "preview", "working", "shrunk", "cannot_read", "unsupported",
           "failed")
# The picker refuses these on the device in the server's own words: templates whose {names} its script fills.
_REFUSALS = {"too_large": ("image.too_large", ("size", "limit")), "empty": ("image.empty", ()),
             "too_many_pixels": ("image.too_many_pixels_sized", ("width", "height", "megapixels", "limit"))}
# The browser's own counts are shown, never trusted: anything beyond these is a forged value, not a photo.
_MAX_CLAIMED_BYTES = 10**10
_MAX_CLAIMED_SIDE = 10**6


@dataclass(frozen=True)
class Pick:
    """What the picker sent for one photo: bytes still to be checked, and how they were made."""

    data: bytes
    shrunk_in_browser: bool
    reason: str | None = None                      # why the browser sent it whole (a FALLBACK_REASONS entry)
    original_bytes: int | None = None              # the file's size on the device, as the browser counted it
    original_size: tuple[int, int] | None = None   # the upright photo's size before shrinking, as decoded there


def _claimed(value: Any, limit: int) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= limit else None


def _refused(value: dict, max_bytes: int, max_pixels: int) -> ImageRejected:
    """The server's own refusal for a photo the picker refused on the device, from the browser's counts."""
    size = _claimed(value.get("original_bytes"), _MAX_CLAIMED_BYTES)
    width = _claimed(value.get("original_width"), _MAX_CLAIMED_SIDE)
    height = _claimed(value.get("original_height"), _MAX_CLAIMED_SIDE)
    refusal = value.get("refusal")
    if refusal == "too_large" and size:
        return too_large(size, max_bytes)
    if refusal == "too_many_pixels" and width and height:
        return too_many_pixels(width, height, max_pixels)
    return ImageRejected("image.empty" if refusal == "empty" else "image.damaged")


def read_pick(value: Any, max_bytes: int, max_pixels: int) -> Pick | Literal["clear"] | None:
    """Turn the picker's trigger value into a `Pick`, "clear" (the clinician removed the photo) or None (nothing).

    Raises `ImageRejected` with the upload's own messages: for a photo the picker refused on the device (too large,
    too many pixels, empty: no older photo may stand in for it), "image.damaged" for a malformed value, and
    "image.too_large" for a photo over `max_bytes`, found from the length of the base64 text before anything is
    decoded.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("kind") not in ("shrunk", "original", "clear", "refused"):
        raise ImageRejected("image.damaged")
    if value["kind"] == "clear":
        return "clear"
    if value["kind"] == "refused":
        raise _refused(value, max_bytes, max_pixels)
    text = value.get("b64")
    if not isinstance(text, str):
        raise ImageRejected("image.damaged")
    if len(text) > 4 * (max_bytes // 3 + 1):
        raise too_large(len(text) * 3 // 4, max_bytes)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("image.damaged") from None
    width = _claimed(value.get("original_width"), _MAX_CLAIMED_SIDE)
    height = _claimed(value.get("original_height"), _MAX_CLAIMED_SIDE)
    reason = value.get("reason")
    return Pick(data=data, shrunk_in_browser=value["kind"] == "shrunk",
                reason=reason if reason in FALLBACK_REASONS else None,
                original_bytes=_claimed(value.get("original_bytes"), _MAX_CLAIMED_BYTES),
                original_size=(width, height) if width and height else None)


def photo_picker(key: str, *, max_side: int, quality: int, max_bytes: int, max_pixels: int) -> Any:
    """Draw the picker and return its trigger value for this run (a dict once per pick, else None).

    `key` names the component; its words come in the UI's language, its limits from the settings.
    """
    labels = {name: t(f"picker.{name}") for name in _LABELS}
    for name, (code, params) in _REFUSALS.items():
        labels[name] = message_text(Message(code, {p: f"{{{p}}}" for p in params}))
    result = _COMPONENT(key=key, data={"labels": labels, "maxSide": max_side, "quality": quality,
                                       "maxBytes": max_bytes, "maxPixels": max_pixels},
                        on_picked_change=lambda: None)
    return getattr(result, "picked", None)
