"""The photo input: the in-browser picker, the camera and a plain upload; one shrunk photo kept in the session."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import streamlit as st

from domain.errors import InputError
from engine.core import Engine
from ui.i18n import error_text, t
from ui.photo_picker import photo_picker, read_pick
from utils.images import ImageRejected, ShrunkImage, size_text

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]
THUMBNAIL_PX = 160  # a photo no input shows: small, so Assess and the card's headline stay in view on a laptop


@dataclass(frozen=True)
class Photo:
    """The photo the assessment will send, and which path shrank it (said on screen next to it)."""

    image: ShrunkImage
    path: Literal["browser", "server"]
    reason: str | None = None                     # why the browser sent it whole, when it did
    original_bytes: int | None = None             # the browser's count of the file on the device
    original_size: tuple[int, int] | None = None  # the browser's upright size before shrinking
    shown: bool = False  # its input shows it already (the picker's preview, the camera's shot): not drawn twice


@dataclass(frozen=True)
class _Slot:
    source: str                  # "picker:<id>", "upload:<file id>" or "camera:<file id>"
    photo: Photo | None
    error: Exception | None  # said in the UI's language each time it is drawn


def _prepared(engine: Engine, source: str, data: bytes, **how) -> _Slot:
    try:
        return _Slot(source, Photo(engine.prepare_image(data), **how), None)
    except InputError as exc:
        return _Slot(source, None, exc)


def _picked(engine: Engine, value: object, pick_id: str) -> _Slot | None:
    s = engine.settings
    try:
        pick = read_pick(value, s.image_max_upload_bytes, s.image_max_pixels)
    except ImageRejected as exc:
        return _Slot(pick_id, None, exc)
    if pick is None or pick == "clear":
        return None
    return _prepared(engine, pick_id, pick.data, path="browser" if pick.shrunk_in_browser else "server",
                     shown=pick.shrunk_in_browser, reason=pick.reason, original_bytes=pick.original_bytes,
                     original_size=pick.original_size)


def photo_input(engine: Engine, key_prefix: str = "photo") -> tuple[Photo | None, str | None]:
    """Draw the picker, the camera and the plain upload; return the photo to send or why it was refused.

    The photo as sent is described (and, when no input shows it, drawn small: `show_photo`) right under the picker.

    The picker shrinks in the browser; the camera and the plain upload (under "other ways", for a browser where
    the picker does not work) shrink on the server. The newest photo from any of them is the one used. Widgets are
    keyed `<prefix>_picker`, `<prefix>_upload`, `<prefix>_camera` and the camera toggle `use_camera` on the
    diagnose page (`<prefix>_use_camera` elsewhere); the session slot `<prefix>` keeps the shrunk photo, so that
    reruns do not decode a 12 MP file again and a second page has a photo of its own.
    """
    s = engine.settings
    picked = photo_picker(f"{key_prefix}_picker", max_side=s.image_max_side, quality=s.image_jpeg_quality,
                          max_bytes=s.image_max_upload_bytes, max_pixels=s.image_max_pixels)
    about = st.empty()  # under the picker: the photo as sent, once it is known below
    # "use_camera" predates the prefix: the diagnose page's tests and browser test find the toggle by it.
    camera_toggle = "use_camera" if key_prefix == "photo" else f"{key_prefix}_use_camera"
    shot = None
    # One camera control: a phone or tablet has the picker's rear-camera button (its native camera app, full
    # resolution, shrunk on the device), so the toggle for the in-page camera is for a desk computer only; the
    # picker hides its button exactly where this shows (photo_picker.css). `st.html` with only a style adds no gap.
    st.html(f"<style>@media not (pointer: fine) {{ .st-key-{camera_toggle} {{ display: none; }} }}</style>")
    if st.toggle(t("input.use_camera"), key=camera_toggle):
        shot = st.camera_input(t("input.camera"), key=f"{key_prefix}_camera")
    with st.expander(t("photo.other_ways"), icon=":material/upload_file:"):
        # The uploader states the app's own limit (IMAGE_MAX_UPLOAD_MB), not the server's (.streamlit/config.toml).
        uploaded = st.file_uploader(t("input.photo"), type=PHOTO_TYPES, key=f"{key_prefix}_upload",
                                    help=t("photo.other_ways_help"), max_upload_size=math.ceil(s.image_max_upload_mb))

    slot: _Slot | None = st.session_state.get(key_prefix)
    seen: dict[str, str] = st.session_state.setdefault(f"{key_prefix}_seen", {})
    if picked is not None:
        pick_id = picked.get("pick") if isinstance(picked, dict) else None
        slot = _picked(engine, picked, f"picker:{str(pick_id)[:40]}")
    for widget, file in (("camera", shot), ("upload", uploaded)):
        source = f"{widget}:{file.file_id}" if file is not None else ""
        if file is not None and seen.get(widget) != source:
            # Shrink once per photo: reruns (every widget change) must not decode it again.
            slot = _prepared(engine, source, file.getvalue(), path="server", shown=widget == "camera")
        elif file is None and slot is not None and slot.source.startswith(f"{widget}:"):
            slot = None  # the clinician removed it from that widget
        seen[widget] = source
    st.session_state[key_prefix] = slot
    if slot is None:
        return None, None
    if slot.photo is not None:
        with about.container():
            show_photo(slot.photo)
    return slot.photo, error_text(slot.error) if slot.error is not None else None


def _shrinking(image: ShrunkImage) -> str:
    """What the server's shrinking did, in the UI's language: '4032×3024, 3.1 MB → 512×384, 34 KB; 위치 정보 제거됨'."""
    if not image.removed:
        return image.sizes()
    removed = ", ".join(t(f"photo.metadata.{name}") for name in image.removed)
    return f"{image.sizes()}; {t('photo.removed', items=removed)}"


def show_photo(photo: Photo) -> None:
    """What shrinking did to the photo and where it happened; the photo itself, small, when no input shows it.

    `photo_input` draws it under the picker. The picker's preview and the camera's shot are the photo as sent (the
    picker shows the JPEG it sends; the camera, the shot the server shrinks): drawing it again beside them pushed
    *Assess* and the card below the fold on a laptop.
    """
    image = photo.image
    if photo.path == "browser":
        before = (f"{photo.original_size[0]}×{photo.original_size[1]}, " if photo.original_size else "") + (
            size_text(photo.original_bytes) if photo.original_bytes else "?")
        how = t("photo.via_browser", before=before, after=f"{image.width}×{image.height}, {size_text(len(image.jpeg))}")
    elif photo.reason:
        how = f"{t('photo.via_server_' + photo.reason)} {_shrinking(image)}"
    else:
        how = f"{t('photo.via_server')} {_shrinking(image)}"
    line = f"{t('photo.shrunk')}: {how}"
    if photo.shown:
        st.caption(line)
    else:
        st.image(image.jpeg, caption=line, width=THUMBNAIL_PX,
                 alt=t("photo.alt"))  # the caption is not the image's alternative text


def use_photo(engine: Engine, data: bytes, source: str, key_prefix: str = "photo") -> None:
    """Make `data` the photo to send, shrunk on the server as an upload is (a demo case's photo, picked by name).

    Call it from a widget's callback, before `photo_input` runs: the newest photo is the one used, and a later
    pick, shot or upload replaces it as usual.
    """
    st.session_state[key_prefix] = _prepared(engine, source, data, path="server")
