"""The photo input: upload or camera, shrunk once per photo and kept in the session."""

from __future__ import annotations

import streamlit as st

from providers import Engine, InputError
from utils.images import ShrunkImage
from ui.i18n import t

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "heic", "heif"]


def photo_input(engine: Engine) -> tuple[ShrunkImage | None, str | None]:
    """Draw the upload and camera widgets; return the shrunk photo or the reason it was refused."""
    uploaded = st.file_uploader(t("input.photo"), type=PHOTO_TYPES, key="photo_upload")
    shot = None
    if st.toggle(t("input.use_camera"), key="use_camera"):
        shot = st.camera_input(t("input.camera"), key="photo_camera")
    source = shot or uploaded
    if source is None:
        st.session_state.photo = None
        return None, None
    # Shrink once per photo: reruns (every widget change) must not decode a 12 MP file again.
    cached = st.session_state.photo
    if cached is None or cached[0] != source.file_id:
        try:
            cached = (source.file_id, engine.prepare_image(source.getvalue()), None)
        except InputError as exc:
            cached = (source.file_id, None, str(exc))
        st.session_state.photo = cached
    return cached[1], cached[2]


def show_photo(image: ShrunkImage) -> None:
    """The photo exactly as it will be sent, with what shrinking did."""
    st.image(image.jpeg, caption=f"{t('photo.shrunk')}: {image.describe()}", width="stretch")
