"""The photo picker's Python side: what the browser sends is bounded and checked, and the newest photo wins.

The component's JavaScript runs in tests/test_browser_photo.py (Chromium). Here its trigger value is scripted
(the page calls `ui.photo.photo_picker`, replaced for the test), so every branch runs in AppTest in milliseconds.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui.photo
from testkit import corpus
from tests.page_text import alerts, shown
from ui.photo_picker import Pick, read_pick
from utils.images import ImageRejected

APP = str(Path(__file__).resolve().parent.parent / "main.py")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _browser_jpeg(size=(384, 512)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (150, 90, 80)).save(out, "JPEG", quality=70)
    return out.getvalue()


# -- read_pick: the trigger value is outside input -------------------------------------------------------------

def test_a_shrunk_pick_is_read_with_the_browsers_counts():
    pick = read_pick({"kind": "shrunk", "pick": "1", "b64": _b64(b"jpeg bytes"), "original_bytes": 2_900_000,
                      "original_width": 3024, "original_height": 4032, "ms": 120}, 1_000_000, 50_000_000)
    assert pick == Pick(data=b"jpeg bytes", shrunk_in_browser=True, reason=None, original_bytes=2_900_000,
                        original_size=(3024, 4032))


def test_a_whole_file_pick_says_why_and_nothing_else():
    pick = read_pick({"kind": "original", "reason": "cannot_read", "b64": _b64(b"heic")}, 1_000, 50_000_000)
    assert isinstance(pick, Pick) and not pick.shrunk_in_browser and pick.reason == "cannot_read"
    assert read_pick({"kind": "original", "reason": "<script>", "b64": _b64(b"x")}, 1_000, 50_000_000).reason is None


@pytest.mark.parametrize("claims", [{"original_bytes": -1}, {"original_bytes": True}, {"original_bytes": "9"},
                                    {"original_width": 10**7, "original_height": 10},
                                    {"original_width": 10, "original_height": None}])
def test_forged_counts_are_dropped_not_shown(claims):
    pick = read_pick({"kind": "shrunk", "b64": _b64(b"x"), **claims}, 1_000, 50_000_000)
    assert isinstance(pick, Pick)
    assert pick.original_size is None and pick.original_bytes is None


@pytest.mark.parametrize(("value", "said"), [
    ({"refusal": "too_large", "original_bytes": 31_000_000}, "The photo is 31.0 MB; the limit is 25.0 MB."),
    ({"refusal": "too_many_pixels", "original_width": 12_000, "original_height": 9_000},
     "The photo is 12000×9000 pixels (108 megapixels), too many pixels for the limit of 50 megapixels."),
    ({"refusal": "empty"}, "The photo file is empty (0 bytes)."),
    ({"refusal": "too_large"}, "damaged or incomplete"),  # no count to say it with
    ({"refusal": "<b>anything</b>"}, "damaged or incomplete"),
])
def test_a_photo_refused_on_the_device_is_refused_on_the_server_in_its_words(value, said):
    with pytest.raises(ImageRejected) as refused:
        read_pick({"kind": "refused", "pick": "r", **value}, 25_000_000, 50_000_000)
    assert said in str(refused.value)


def test_nothing_and_clear():
    assert read_pick(None, 1_000, 50_000_000) is None
    assert read_pick({"kind": "clear", "pick": "7"}, 1_000, 50_000_000) == "clear"


@pytest.mark.parametrize("value", ["a string", ["kind", "shrunk"], {"kind": "upload", "b64": "AAAA"},
                                   {"kind": "shrunk"}, {"kind": "shrunk", "b64": 12},
                                   {"kind": "shrunk", "b64": "not base64!"}])
def test_malformed_values_are_refused_with_a_message(value):
    with pytest.raises(ImageRejected, match="damaged or incomplete") as refused:
        read_pick(value, 1_000, 50_000_000)
    assert refused.value.code == "image.damaged"


def test_an_oversized_payload_is_refused_before_it_is_decoded(monkeypatch):
    decoded = []
    monkeypatch.setattr(base64, "b64decode", lambda *a, **k: decoded.append(a) or b"")
    with pytest.raises(ImageRejected, match="The photo is 30 KB; the limit is 1 KB"):
        read_pick({"kind": "original", "b64": "A" * 40_000}, 1_000, 50_000_000)
    assert not decoded


# -- the page: which photo is used, and the path said on screen --------------------------------------------------

class Picker:
    """Stands in for the browser: the next run's trigger value, then None as Streamlit does."""

    def __init__(self) -> None:
        self.next = None
        self.calls = 0

    def __call__(self, key, **limits):
        self.calls += 1
        value, self.next = self.next, None
        return value


@pytest.fixture
def picker(monkeypatch):
    fake = Picker()
    monkeypatch.setattr(ui.photo, "photo_picker", fake)
    return fake


def _photo_caption(at: AppTest) -> str:
    """The line about the photo as sent: a caption under the picker (whose preview is the photo), or under the
    small photo the page draws when no input shows it."""
    lines = [caption for image in at.get("image") for caption in image.captions]
    return "\n".join(lines + [c.value for c in at.caption if c.value.startswith("전송될 사진")])


def _pick(at: AppTest, picker: Picker, value) -> AppTest:
    picker.next = value
    return at.run()


def test_a_browser_shrunk_photo_is_checked_sent_and_said_so(engine_env, fake_llm, picker):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at = _pick(at, picker, {"kind": "shrunk", "pick": "a", "b64": _b64(_browser_jpeg()), "original_bytes": 2_900_000,
                            "original_width": 3024, "original_height": 4032})
    assert not at.exception
    assert "이 기기에서 축소함 (3024×4032, 2.9 MB → 384×512" in _photo_caption(at)
    assert not at.get("image")  # the picker's preview is the photo as sent: the page does not draw it again
    at = at.button(key="assess").click().run()
    assert "기저세포암 · Basal cell carcinoma" in shown(at)
    sent = fake_llm.chat_requests[-1].body["messages"][1]["content"]
    assert any(part.get("type") == "image_url" for part in sent)
    # Reruns do not lose it, and a removal in the picker drops it.
    at = at.run()
    assert "이 기기에서 축소함" in _photo_caption(at)
    at = _pick(at, picker, {"kind": "clear", "pick": "b"})
    assert "이 기기에서 축소함" not in _photo_caption(at)


def test_a_photo_refused_on_the_device_replaces_the_one_before(engine_env, fake_llm, picker):
    """The clinician picks a second photo that is too large: the first must not be assessed in its place."""
    at = AppTest.from_file(APP, default_timeout=20).run()
    at = _pick(at, picker, {"kind": "shrunk", "pick": "a", "b64": _b64(_browser_jpeg())})
    assert "이 기기에서 축소함" in _photo_caption(at)
    at.text_area(key="symptoms").input("코 옆의 진주빛 구진").run()
    at = _pick(at, picker, {"kind": "refused", "pick": "b", "refusal": "too_large", "original_bytes": 31_000_000})
    assert not _photo_caption(at)
    assert any("31.0 MB" in e for e in alerts(at, "error"))
    at = at.button(key="assess").click().run()
    assert not [r for r in fake_llm.chat_requests if r.body.get("max_tokens") != 1]
    assert any("아무것도 보내지 않았습니다" in e for e in alerts(at, "error"))
    # The picker's remove button clears the refusal; the typed text stays and is assessed alone.
    at = _pick(at, picker, {"kind": "clear", "pick": "c"})
    assert not any("31.0 MB" in e for e in alerts(at, "error"))
    assert at.text_area(key="symptoms").value == "코 옆의 진주빛 구진"
    at = at.button(key="assess").click().run()
    assert "기저세포암 · Basal cell carcinoma" in shown(at)
    sent = [r for r in fake_llm.chat_requests if r.body.get("max_tokens") != 1][-1].body["messages"][1]["content"]
    assert not any(isinstance(part, dict) and part.get("type") == "image_url" for part in sent)


def test_a_forged_picker_payload_gets_the_usual_message_and_the_text_stays(engine_env, fake_llm, picker):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.text_area(key="symptoms").input("코 옆의 진주빛 구진").run()
    at = _pick(at, picker, {"kind": "shrunk", "pick": "x", "b64": _b64(corpus.pdf_named_jpg())})
    assert any("PDF" in message for message in alerts(at, "error"))
    at = at.button(key="assess").click().run()
    assert not at.exception and not fake_llm.chat_requests
    assert at.text_area(key="symptoms").value == "코 옆의 진주빛 구진"


def test_a_heic_sent_whole_is_shrunk_on_the_server_and_said_so(engine_env, fake_llm, picker):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at = _pick(at, picker, {"kind": "original", "reason": "cannot_read", "pick": "h",
                            "b64": _b64(corpus.heic(640, 480, orientation=6))})
    assert "이 브라우저가 이 형식(HEIC 등)을 읽지 못해 원본을 보내 서버에서 축소함: 480×640" in _photo_caption(at)


def test_the_newest_photo_wins_between_the_picker_and_the_plain_upload(engine_env, fake_llm, picker):
    at = AppTest.from_file(APP, default_timeout=20).run()
    at.file_uploader(key="photo_upload").set_value(("a.jpg", corpus.plain_jpeg(800, 600), "image/jpeg")).run()
    assert "서버에서 축소함: 800×600" in _photo_caption(at)
    at = _pick(at, picker, {"kind": "shrunk", "pick": "p", "b64": _b64(_browser_jpeg())})
    assert "이 기기에서 축소함" in _photo_caption(at)
    at = at.run()  # the uploader still holds its file: it is not taken again
    assert "이 기기에서 축소함" in _photo_caption(at)
    at.file_uploader(key="photo_upload").set_value(("b.jpg", corpus.plain_jpeg(640, 480), "image/jpeg")).run()
    assert "서버에서 축소함: 640×480" in _photo_caption(at)
