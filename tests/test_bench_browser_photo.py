"""The pieces `python -m bench.browser_photo` measures with: the uplink proxy, the byte counters, the phone photos.

The bench's own numbers are not asserted here (they depend on the machine); what is asserted is
that its instruments are right: the proxy forwards and counts every byte and never lets the
browser's bytes through faster than its cap, DevTools' counts add up to what the page sent, and
Chromium's network emulation slows a websocket message as it slows an upload (the bench relies on it).
The only clock readings are lower bounds a working limiter guarantees whatever the machine's load.
"""

from __future__ import annotations

import base64
import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from bench.browser_photo import WireMeter, payload_bytes, phone_photos
from bench.uplink import BURST, Uplink
from testkit.browser import CHROMIUM
from testkit.corpus import GPS_IFD, ORIENTATION

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"),
                                    reason="Debian's chromium is not installed (scripts/test.sh installs it)")


class Sink:
    """A TCP server that reads everything one client sends, then answers `reply` bytes and closes."""

    def __init__(self, reply: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            while data := conn.recv(65536):
                self.received += len(data)
            conn.sendall(b"r" * self.reply)


def send_through(link: Uplink, size: int) -> tuple[float, bytes]:
    """Send `size` bytes through `link`, half-close, read the answer; seconds from the first byte to the answer."""
    with socket.create_connection(("127.0.0.1", link.port)) as s:
        started = time.monotonic()
        s.sendall(b"u" * size)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        while data := s.recv(65536):
            answer += data
        return time.monotonic() - started, answer


def test_the_proxy_forwards_and_counts_every_byte_each_way():
    sink = Sink(reply=5000)
    with Uplink(sink.port) as link:
        _, answer = send_through(link, 300_000)
    sink.thread.join(5)
    assert sink.received == 300_000 and len(answer) == 5000
    assert (link.up_bytes, link.down_bytes) == (300_000, 5000)


def test_the_proxy_never_lets_the_uplink_run_faster_than_its_cap():
    sink = Sink(reply=10)
    rate = 1.6e6  # bits a second: 200 KB a second
    with Uplink(sink.port, up_bits_per_s=rate) as link:
        seconds, answer = send_through(link, 200_000)
    # All but the bucket's burst must wait for tokens: at least 0.92 s, however fast or loaded the machine.
    assert seconds >= (200_000 - BURST) / (rate / 8)
    assert link.up_bytes == 200_000 and answer == b"r" * 10


def test_devtools_counts_websocket_payloads_and_request_bodies():
    meter = WireMeter()

    class Session:
        handlers: dict = {}

        def on(self, name, handler):
            self.handlers[name] = handler

    cdp = Session()
    meter.attach(cdp)
    binary = bytes(range(256)) * 40
    cdp.handlers["Network.webSocketFrameSent"]({"response": {"opcode": 2,
                                                             "payloadData": base64.b64encode(binary).decode()}})
    cdp.handlers["Network.webSocketFrameSent"]({"response": {"opcode": 1, "payloadData": "사진"}})
    cdp.handlers["Network.requestWillBeSentExtraInfo"]({"headers": {"Content-Length": "2918000"}})
    cdp.handlers["Network.requestWillBeSentExtraInfo"]({"headers": {"Accept": "*/*"}})  # a GET: no body
    assert (meter.ws, meter.http, meter.total) == (10_240 + 6, 2_918_000, 10_240 + 6 + 2_918_000)
    assert payload_bytes(2, base64.b64encode(b"abcd").decode()) == 4


def test_the_phone_photos_are_12_mp_jpegs_of_3_mb_turned_by_exif_with_gps_and_real_texture(tmp_path):
    first, second = phone_photos(2, tmp_path)
    assert first.read_bytes() != second.read_bytes()  # a new photo each run: never an answer from the cache
    with Image.open(io.BytesIO(first.read_bytes())) as img:
        exif = img.getexif()
        assert (img.format, img.size) == ("JPEG", (4000, 3000))
        assert exif[ORIENTATION] == 6 and exif.get_ifd(GPS_IFD)
        # Texture that survives the shrink, as a real photo's does: the shrunk JPEG is not a flattering 5 KB.
        small = io.BytesIO()
        img.resize((512, 384)).save(small, "JPEG", quality=70)
    assert 2_500_000 <= first.stat().st_size <= 3_500_000
    assert small.tell() >= 25_000


# -- in Chromium ---------------------------------------------------------------------------------

# Random bytes: the websocket's permessage-deflate would shrink zeros to nothing on the wire.
_SEND = """async ([kind, n]) => {
  const body = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(body.subarray(i, i + 65536));
  const t0 = performance.now();
  if (kind === 'ws') {
    const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');
    await new Promise(r => ws.onopen = r);
    const reply = new Promise(r => ws.onmessage = e => r(e.data));
    ws.send(body);
    const got = Number(await reply);
    ws.close();
    return [got, performance.now() - t0];
  }
  const r = await fetch('/upload', {method: 'PUT', body});
  return [Number(await r.text()), performance.now() - t0];
}"""


@pytest.fixture
def echo_server():
    """A small ASGI server: a websocket that answers each message's length, and a PUT that answers its body's."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    async def home(request):
        return HTMLResponse("<html><body>uplink</body></html>")

    async def upload(request):
        return PlainTextResponse(str(len(await request.body())))

    async def echo_length(websocket):
        await websocket.accept()
        try:
            while True:
                await websocket.send_text(str(len(await websocket.receive_bytes())))
        except WebSocketDisconnect:
            pass

    app = Starlette(routes=[Route("/", home), Route("/upload", upload, methods=["PUT"]),
                            WebSocketRoute("/ws", echo_length)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


def counted(page, meter: WireMeter, expected: tuple[int, int], seconds: float = 10.0) -> None:
    """Wait for DevTools to report the bytes sent (its events can come after the page's own answer; Playwright
    hands them over only while it waits), then check them: (websocket, HTTP)."""
    deadline = time.monotonic() + seconds
    while (meter.ws, meter.http) != expected and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert (meter.ws, meter.http) == expected


@pytest.mark.browser
@needs_chromium
def test_chromium_throttles_websocket_frames_and_both_counters_see_the_bytes(browser, echo_server):
    with Uplink(echo_server) as link:
        page = browser.new_page()
        cdp = page.context.new_cdp_session(page)
        meter = WireMeter()
        meter.attach(cdp)
        cdp.send("Network.enable")
        page.goto(f"http://127.0.0.1:{link.port}/")
        wire = link.up_bytes
        assert page.evaluate(_SEND, ["ws", 300_000])[0] == 300_000
        assert page.evaluate(_SEND, ["http", 200_000])[0] == 200_000
        counted(page, meter, (300_000, 200_000))
        # On TCP: the same bytes plus the websocket's handshake and framing and the PUT's headers (a few KB).
        assert 500_000 <= link.up_bytes - wire <= 510_000

        rate = 2.4e6  # bits a second: 300 KB a second
        cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1,
                                                      "uploadThroughput": rate / 8})
        ws_ms = page.evaluate(_SEND, ["ws", 300_000])[1]
        http_ms = page.evaluate(_SEND, ["http", 300_000])[1]
    # 300 KB at 300 KB/s take a second: a websocket message is held back as an upload is.
    assert ws_ms >= 900 and http_ms >= 900
