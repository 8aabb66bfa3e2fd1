"""The photo picker in real Chromium: shrunk on the device, checked on the server, and the fallback for HEIC.

One app server and one fake provider serve the whole module; each test opens its own page (its own session).
Bytes are counted with Chromium's own network events: every websocket frame and request body the page sends.
"""

from __future__ import annotations

import base64
import io
import math
import os
from pathlib import Path

import pytest
from PIL import Image

from testkit import corpus
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, settled
from testkit.fake_llm import FakeLLM

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                 reason="Debian's chromium is not installed (scripts/test.sh installs it)")]

PICKER = '[data-testid="photo-picker"]'
PICKER_INPUT = 'input[data-testid="photo-picker-input"]'


@pytest.fixture(scope="module")
def provider():
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def app_url(provider, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("photo_app")
    env = app_env(RUNPOD_API_KEY="rpa-photo-test", RUNPOD_BASE_URL=provider.url, RUNPOD_MODEL_NAME="clinic-derm-v1",
                  DATA_DIR=str(cwd / "data"), AUTH_MODE="off")
    with serve_app(env, cwd) as url:
        yield url + "/"


class Uplink:
    """Bytes the page sends to the server, as Chromium's network events report them."""

    def __init__(self, page) -> None:
        self.bytes = 0
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.webSocketFrameSent", self._frame)
        page.on("request", self._request)

    def _frame(self, event: dict) -> None:
        response = event["response"]
        payload = response["payloadData"]
        # Binary frames (Streamlit's protobuf messages) are reported base64-encoded.
        self.bytes += len(base64.b64decode(payload)) if response.get("opcode") == 2 else len(payload.encode())

    def _request(self, request) -> None:
        body = request.post_data_buffer
        self.bytes += len(body) if body else 0


def _open(browser, app_url, **context):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000}, **context)
    page.goto(app_url)
    expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=30_000)
    expect(page.locator(PICKER)).to_be_visible(timeout=20_000)
    return page


def _assessments(provider: FakeLLM) -> list:
    """The provider's assessment requests, without the one-token warm-ups a page sends when it opens."""
    return [r for r in provider.chat_requests if r.body.get("max_tokens") != 1]


def _sent_image(provider: FakeLLM) -> Image.Image:
    content = _assessments(provider)[-1].body["messages"][1]["content"]
    url = next(part["image_url"]["url"] for part in content if part.get("type") == "image_url")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def _assess(page):
    from playwright.sync_api import expect

    settled(page)
    page.get_by_role("button", name="평가하기").click()
    card = page.locator(".st-key-result_card")
    expect(card.get_by_text("기저세포암 · Basal cell carcinoma")).to_be_visible(timeout=30_000)
    return card


def test_a_12_mp_phone_photo_is_shrunk_on_the_device_and_arrives_upright_without_metadata(
        app_url, browser, provider, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(corpus.phone_jpeg(orientation=6, gps=True))  # 4032×3024 stored, upright 3024×4032
    assert photo.stat().st_size > 2_000_000
    page = _open(browser, app_url)
    uplink = Uplink(page)
    page.locator(PICKER_INPUT).set_input_files(str(photo))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "shrunk", timeout=20_000)
    expect(page.get_by_text("이 기기에서 축소함 (3024×4032", exact=False)).to_be_visible(timeout=20_000)
    _assess(page)

    assert uplink.bytes <= 100_000, f"{uplink.bytes} bytes crossed the network"
    sent_by_browser = int(page.locator(PICKER).get_attribute("data-sent-bytes"))
    assert 2_000 < sent_by_browser < 90_000
    image = _sent_image(provider)
    assert image.format == "JPEG" and max(image.size) <= 512
    assert image.size == (384, 512)  # upright: portrait
    assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
    # The red marker stored top-left is top-right once turned by orientation 6.
    top_right = image.getpixel((image.width - 20, 20))
    top_left = image.getpixel((20, 20))
    assert top_right[0] > 150 and top_right[2] < 110, top_right
    assert top_left[2] > 150, top_left


def test_the_same_photo_picked_twice_is_a_cache_hit(app_url, browser, provider, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "again.jpg"
    photo.write_bytes(corpus.phone_jpeg(orientation=6, width=3000, height=2000, gps=True))
    page = _open(browser, app_url)
    page.locator(PICKER_INPUT).set_input_files(str(photo))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "shrunk", timeout=20_000)
    # The server's word that it has the photo ("checked again on the server"): Assess before it sends nothing.
    expect(page.get_by_text("서버에서 다시 확인함", exact=False)).to_be_visible(timeout=20_000)
    first_bytes = page.locator(PICKER).get_attribute("data-sent-bytes")
    _assess(page)
    asked = len(_assessments(provider))

    page.locator(PICKER_INPUT).set_input_files(str(photo))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "shrunk", timeout=20_000)
    assert page.locator(PICKER).get_attribute("data-sent-bytes") == first_bytes
    card = _assess(page)
    expect(card.get_by_text("캐시", exact=False)).to_be_visible()
    assert len(_assessments(provider)) == asked  # answered from the cache: the browser's bytes were the same


def test_a_heic_photo_falls_back_to_shrinking_on_the_server(app_url, browser, provider, tmp_path):
    from playwright.sync_api import expect

    photo = tmp_path / "IMG_0002.heic"
    photo.write_bytes(corpus.heic(1600, 1200, orientation=6))
    page = _open(browser, app_url)
    page.locator(PICKER_INPUT).set_input_files(str(photo))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "fallback", timeout=20_000)
    expect(page.locator(PICKER).get_by_text("이 브라우저는 이 사진", exact=False)).to_be_visible()
    expect(page.get_by_text("원본을 보내 서버에서 축소함", exact=False)).to_be_visible(timeout=20_000)
    _assess(page)
    image = _sent_image(provider)
    assert image.format == "JPEG" and image.size == (384, 512)
    assert not image.getexif()


def test_a_forged_upload_is_refused_with_the_usual_message(app_url, browser, provider, tmp_path):
    """A modified client sends a PDF where the picker's JPEG goes; the server's checks refuse it as they would."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    pdf = base64.b64encode(corpus.pdf_named_jpg()).decode()
    page.add_init_script(f"""
        OffscreenCanvas.prototype.convertToBlob = async function () {{
            const bytes = Uint8Array.from(atob("{pdf}"), (c) => c.charCodeAt(0));
            return new Blob([bytes], {{ type: "image/jpeg" }});
        }};""")
    page.goto(app_url)
    expect(page.locator(PICKER)).to_be_visible(timeout=30_000)
    photo = tmp_path / "lesion.jpg"
    photo.write_bytes(corpus.plain_jpeg(1600, 1200))
    asked = len(_assessments(provider))
    page.locator(PICKER_INPUT).set_input_files(str(photo))
    alert = page.locator(".plain-alert[data-kind=error]")
    expect(alert).to_be_visible(timeout=20_000)
    assert "PDF" in alert.inner_text()
    page.get_by_role("textbox", name="증상 및 소견").fill("코 옆의 진주빛 구진")
    settled(page)
    page.get_by_role("button", name="평가하기").click()
    refused = page.get_by_text("사진이 받아들여지지 않아 아무것도 보내지 않았습니다", exact=False)
    expect(refused).to_be_visible(timeout=20_000)
    assert len(_assessments(provider)) == asked  # nothing went to the provider with a refused photo
    assert page.get_by_role("textbox", name="증상 및 소견").input_value() == "코 옆의 진주빛 구진"


def _psnr(a: Image.Image, b: Image.Image) -> float:
    from PIL import ImageChops, ImageStat

    mse = sum(v * v for v in ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).rms) / 3
    return 10 * math.log10(255 * 255 / mse) if mse else 99.0


def test_the_browser_shrinks_as_well_as_the_server(app_url, browser, provider, tmp_path):
    """Fine stripes alias into moiré when a 12 MP photo is shrunk in one bilinear jump (~16 dB off Lanczos)."""
    from PIL import ImageDraw
    from playwright.sync_api import expect

    from utils.images import shrink_image

    striped = corpus.photo(4032, 3024, grain=25)
    draw = ImageDraw.Draw(striped)
    for x in range(0, 4032, 7):
        draw.line((x, 0, x, 3024), fill=(30, 30, 30), width=2)
    data = corpus.encode(striped, "JPEG", quality=90, exif=corpus.camera_exif(6).tobytes())
    photo = tmp_path / "striped.jpg"
    photo.write_bytes(data)
    page = _open(browser, app_url)
    page.locator(PICKER_INPUT).set_input_files(str(photo))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "shrunk", timeout=20_000)
    expect(page.get_by_text("서버에서 다시 확인함", exact=False)).to_be_visible(timeout=20_000)  # the server has it
    _assess(page)
    by_server = Image.open(io.BytesIO(shrink_image(data).jpeg))
    sent = _sent_image(provider)
    assert sent.size == by_server.size
    assert _psnr(sent, by_server) > 25


def test_a_photo_too_large_is_refused_on_the_device_and_the_one_before_is_not_used(app_url, browser, provider,
                                                                                   tmp_path):
    from playwright.sync_api import expect

    page = _open(browser, app_url)
    first = tmp_path / "first.jpg"
    first.write_bytes(corpus.plain_jpeg(1600, 1200))
    page.locator(PICKER_INPUT).set_input_files(str(first))
    expect(page.get_by_text("이 기기에서 축소함 (1600×1200", exact=False)).to_be_visible(timeout=20_000)
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(corpus.plain_jpeg(64, 48) + b"\0" * 26_000_000)  # over IMAGE_MAX_UPLOAD_MB (25)
    uplink = Uplink(page)
    page.locator(PICKER_INPUT).set_input_files(str(huge))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "refused", timeout=20_000)
    expect(page.locator(".plain-alert[data-kind=error]").get_by_text("26.0 MB", exact=False)).to_be_visible(
        timeout=20_000)
    expect(page.get_by_text("이 기기에서 축소함 (1600×1200", exact=False)).to_have_count(0)
    assert uplink.bytes < 20_000  # the 26 MB never left the device


def test_a_photo_refused_on_the_device_can_be_removed_and_the_text_assessed(app_url, browser, provider, tmp_path):
    """The refusal says to remove the photo to assess the text alone: the remove button is there, and keeps the text."""
    from playwright.sync_api import expect

    page = _open(browser, app_url)
    box = page.get_by_role("textbox", name="증상 및 소견")
    box.fill("코 옆의 진주빛 구진")
    huge = tmp_path / "huge.jpg"
    huge.write_bytes(corpus.plain_jpeg(64, 48) + b"\0" * 26_000_000)  # over IMAGE_MAX_UPLOAD_MB (25)
    page.locator(PICKER_INPUT).set_input_files(str(huge))
    expect(page.locator(PICKER)).to_have_attribute("data-state", "refused", timeout=20_000)
    alert = page.locator(".plain-alert[data-kind=error]")
    expect(alert.get_by_text("26.0 MB", exact=False)).to_be_visible(timeout=20_000)
    settled(page)
    page.get_by_role("button", name="평가하기").click()
    expect(page.get_by_text("설명만으로 평가하려면 사진을 지우세요", exact=False)).to_be_visible(timeout=20_000)

    remove = page.locator(PICKER).get_by_role("button", name="사진 지우기")
    expect(remove).to_be_visible()
    remove.click()
    expect(page.locator(PICKER)).to_have_attribute("data-state", "empty")
    expect(page.locator(PICKER).get_by_text("26.0 MB", exact=False)).to_have_count(0)
    expect(alert.get_by_text("26.0 MB", exact=False)).to_have_count(0, timeout=20_000)
    assert box.input_value() == "코 옆의 진주빛 구진"
    asked = len(_assessments(provider))
    _assess(page)
    assert len(_assessments(provider)) == asked + 1
    content = _assessments(provider)[-1].body["messages"][1]["content"]
    assert not any(isinstance(part, dict) and part.get("type") == "image_url" for part in content)
    assert box.input_value() == "코 옆의 진주빛 구진"
