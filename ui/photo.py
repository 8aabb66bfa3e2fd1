"""The photo input: upload or camera, shrunk once per photo and kept in the session."""

from __future__ import annotations

import streamlit as st

from providers import Engine, InputError
from ui.i18n import t
from utils.images import ShrunkImage

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]


def photo_input(engine: Engine, key_prefix: str = "photo") -> tuple[ShrunkImage | None, str | None]:
    """Draw the upload and camera widgets; return the shrunk photo or the reason it was refused.

    `key_prefix` names the widgets (`<prefix>_upload`, `<prefix>_use_camera`, `<prefix>_camera`)
    and the session slot that keeps the shrunk photo (`<prefix>`), so that a second page has a
    photo of its own. The default keeps the diagnose page's keys: photo_upload, use_camera,
    photo_camera and the slot `photo`.
    """
    # "use_camera" predates the prefix: the diagnose page's tests and browser test find the toggle by it.
    camera_toggle = "use_camera" if key_prefix == "photo" else f"{key_prefix}_use_camera"
    uploaded = st.file_uploader(t("input.photo"), type=PHOTO_TYPES, key=f"{key_prefix}_upload")
    shot = None
    if st.toggle(t("input.use_camera"), key=camera_toggle):
        shot = st.camera_input(t("input.camera"), key=f"{key_prefix}_camera")
    source = shot or uploaded
    if source is None:
        st.session_state[key_prefix] = None
        return None, None
    # Shrink once per photo: reruns (every widget change) must not decode a 12 MP file again.
    cached = st.session_state.get(key_prefix)
    if cached is None or cached[0] != source.file_id:
        try:
            cached = (source.file_id, engine.prepare_image(source.getvalue()), None)
        except InputError as exc:
            cached = (source.file_id, None, str(exc))
        st.session_state[key_prefix] = cached
    return cached[1], cached[2]


def show_photo(image: ShrunkImage) -> None:
    """The photo exactly as it will be sent, with what shrinking did."""
    st.image(image.jpeg, caption=f"{t('photo.shrunk')}: {image.describe()}", width="stretch")
