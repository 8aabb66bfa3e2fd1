"""A 12 MP phone photo from pick to card in real Chromium, on a slow uplink: the browser's shrink against the server's.

One `streamlit run app.py` (sign-in off) with the fake provider (testkit/fake_llm) as RunPod, answering
every photo after --provider-seconds (4 s); headless Chromium opens the page at full speed, then the
uplink is cut to 5 or 50 Mbit/s (and the page's CPU slowed 4× for the "phone" runs), and the bench
picks a 4000×3000 JPEG (~3 MB, EXIF orientation 6 and GPS, a fresh one each time so no answer comes
from the cache) with one of two paths:

  server   today's plain uploader (`st.file_uploader`, key photo_upload): the whole file goes up in
           an HTTP PUT and the server shrinks it;
  browser  the photo picker component (`[data-testid="photo-picker"]`): the page shrinks the photo
           to 512 px and sends the JPEG over the websocket. Skipped, with a line saying so, while the
           component is not on the page.

Then it presses 평가하기 as soon as the app has accepted the photo, i.e. once the server-side preview
("전송될 사진: …") is shown, and stops the clock when the result card is drawn. Pressing earlier is not
the same act on the two paths: the uploader hands the app its photo only once the upload is complete,
so a press during the upload would assess without the photo. Both paths wait for the same sign.

The uplink is cut by Chromium's own network emulation (DevTools `Network.emulateNetworkConditions`,
uploadThroughput: it slows websocket frames and HTTP bodies alike, on sockets opened before it was set;
see bench/RESULTS.md) or, with `--limiter proxy`, by bench/uplink.py's token bucket. Either way every
byte goes through that proxy, which counts what crosses TCP; DevTools counts the same bytes from the
page's side (websocket payloads before compression, HTTP bodies by their Content-Length). Both counts
are reported: from the pick to the card.

    .venv/bin/python -m bench.browser_photo                      # both paths, 5 runs each, ~4-6 min
    .venv/bin/python -m bench.browser_photo --paths server --reps 3 --no-record
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

from bench.uplink import Uplink
from testkit.answers import VALID
from testkit.app_server import app_env, serve_app
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.corpus import camera_exif, encode, photo
from testkit.fake_llm import FakeLLM, Reply

OUT = Path(__file__).parent / "out"
RESULTS = Path(__file__).parent / "RESULTS.md"
HEADING = "## Photos from the browser (`python -m bench.browser_photo`)"

BYTES_TARGET = 100_000      # bytes uploaded for a 12 MP JPEG (median)
CARD_TARGET_S = 6.0         # pick → card at 5 Mbit/s, provider answering in 4 s (median)
SHRINK_TARGET_MS = 400.0    # the component's shrink, CPU slowed 4× (median)

APP_HEADING = "피부 병변 AI 평가"
PREVIEW = "전송될 사진"      # t("photo.shrunk"): the caption of the photo the server accepted
ASSESS = "평가하기"
CARD = ".st-key-result_card"
PICKER = '[data-testid="photo-picker"]'
UPLOADER = ".st-key-photo_upload"
INPUTS = {"browser": 'input[data-testid="photo-picker-input"]', "server": f"{UPLOADER} input[type=file]"}
PICKER_DATA = ("state", "shrink-ms", "original-bytes", "sent-bytes")
OCTAVES = ((1, 4), (8, 16), (32, 24), (128, 30))  # (pixels per noise sample, its strength): grain to blotches


@dataclass(frozen=True)
class Condition:
    """The network and the device of one set of runs."""

    name: str
    up_bits_per_s: float
    cpu_rate: float        # DevTools CPU throttling: 1 = this machine, 4 = a mid-range phone


CONDITIONS = [Condition("5 Mbit/s", 5e6, 1), Condition("50 Mbit/s", 50e6, 1),
              Condition("5 Mbit/s, CPU 4× (phone)", 5e6, 4)]


@dataclass
class Run:
    """One pick: what it took, and what crossed the network from the browser."""

    path: str
    condition: str
    photo_bytes: int
    seconds: float | None = None          # pick → card
    accepted_s: float | None = None       # pick → the server-side preview
    asked_s: float | None = None          # pick → the provider has the request (the fake's clock: this process's)
    devtools_bytes: int = 0               # websocket payloads + HTTP request bodies, as the page sent them
    devtools_ws_bytes: int = 0
    proxy_bytes: int = 0                  # what crossed TCP, browser → server
    provider_calls: int = 0
    picker: dict = field(default_factory=dict)   # the component's data-* after the pick (browser path)
    error: str | None = None


# -- photos and counting -------------------------------------------------------------------------

def textured(width: int, height: int) -> Image.Image:
    """The corpus photo with texture at several scales, as skin has: ~3 MB at 12 MP, ~45 KB once shrunk to 512 px.

    Pixel-level grain alone makes the 12 MP file heavy but averages away in the shrink (a 5 KB
    JPEG at 512 px, which would flatter the browser's path); the coarser octaves survive it.
    """
    bands = list(photo(width, height).split())
    for scale, sigma in OCTAVES:
        noise = Image.effect_noise((width // scale, height // scale), sigma)
        noise = noise.resize((width, height), Image.Resampling.BICUBIC) if scale > 1 else noise
        bands = [ImageChops.add(band, noise, offset=-128) for band in bands]
    return Image.merge("RGB", bands)


def phone_photos(count: int, folder: Path) -> list[Path]:
    """`count` 4000×3000 JPEGs of ~3 MB as a phone writes them (orientation 6, GPS), each slightly different.

    Each carries its own coloured patch, large enough to survive the shrink to 512 px, so every
    assessment is a new request and none is answered from the app's cache.
    """
    base = textured(4000, 3000)
    paths = []
    for n in range(count):
        img = base.copy()
        ImageDraw.Draw(img).rectangle((2400, 300, 2800, 700), fill=(37 * n % 256, 91 * n % 256, 53 * n % 256))
        path = folder / f"IMG_{n + 1:04d}.JPG"
        path.write_bytes(encode(img, "JPEG", quality=90, exif=camera_exif(6).tobytes()))
        paths.append(path)
    return paths


def payload_bytes(opcode: int, data: str) -> int:
    """The bytes of one websocket frame's payload as DevTools reports it (binary frames come base64-encoded)."""
    return len(base64.b64decode(data)) if opcode == 2 else len(data.encode("utf-8"))


class WireMeter:
    """What the page sends, as DevTools sees it: websocket payloads and HTTP request bodies (Content-Length)."""

    def __init__(self) -> None:
        self.ws = 0
        self.http = 0

    @property
    def total(self) -> int:
        """Websocket and HTTP bytes together."""
        return self.ws + self.http

    def attach(self, cdp) -> None:
        """Count from `cdp`'s events from now on (its Network domain must be enabled)."""
        cdp.on("Network.webSocketFrameSent", self._frame)
        cdp.on("Network.requestWillBeSentExtraInfo", self._request)

    def _frame(self, event: dict) -> None:
        response = event["response"]
        self.ws += payload_bytes(response["opcode"], response["payloadData"])

    def _request(self, event: dict) -> None:
        # The headers Chromium actually sent: a body (a fetch, an upload's multipart form) declares its length.
        length = next((v for k, v in event.get("headers", {}).items() if k.lower() == "content-length"), "0")
        with suppress(ValueError):
            self.http += int(length)


# -- one pick ------------------------------------------------------------------------------------

async def component_present(page) -> bool:
    """Whether the photo picker component is on the page (it draws in its own, open shadow DOM)."""
    with suppress(Exception):
        await page.locator(PICKER).first.wait_for(state="attached", timeout=5000)
        return True
    return False


async def pick_to_card(browser, url: str, run: Run, photo_path: Path, condition: Condition, link: Uplink,
                       fake: FakeLLM, limiter: str, seconds: float) -> Run:
    """Open the page, cut the uplink, pick the photo, press 평가하기 once the preview shows, wait for the card."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        meter = WireMeter()
        meter.attach(cdp)
        await cdp.send("Network.enable")
        await page.goto(url, timeout=seconds * 1000)
        await page.get_by_role("heading", name=APP_HEADING).wait_for(timeout=seconds * 1000)
        await page.locator(INPUTS["server"]).wait_for(state="attached", timeout=seconds * 1000)
        if run.path == "browser" and not await component_present(page):
            run.error = "absent"
            return run
        if run.path == "server" and not await page.locator(UPLOADER).is_visible():
            # The plain uploader may sit in a closed expander ("other ways"): the clinician opens it before picking.
            await page.locator(f"details:has({UPLOADER}) > summary").first.click(timeout=seconds * 1000)
        # The page was opened at full speed: the clinician had it open before taking the photo.
        if limiter == "cdp":
            await cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": 0, "downloadThroughput": -1,
                "uploadThroughput": condition.up_bits_per_s / 8})
        else:
            link.set_rate(condition.up_bits_per_s)
        await cdp.send("Emulation.setCPUThrottlingRate", {"rate": condition.cpu_rate})
        devtools, ws, wire, calls = meter.total, meter.ws, link.up_bytes, len(fake.chat_requests)
        started = time.monotonic()
        await page.locator(INPUTS[run.path]).set_input_files(photo_path)
        await page.get_by_text(PREVIEW).first.wait_for(timeout=seconds * 1000)
        run.accepted_s = time.monotonic() - started
        await page.get_by_role("button", name=ASSESS).click(timeout=seconds * 1000)
        await page.locator(CARD).wait_for(state="visible", timeout=seconds * 1000)
        run.seconds = time.monotonic() - started
        run.devtools_bytes, run.devtools_ws_bytes = meter.total - devtools, meter.ws - ws
        run.proxy_bytes = link.up_bytes - wire
        asked = fake.chat_requests[calls:]
        run.provider_calls = len(asked)
        run.asked_s = asked[0].at - started if asked else None
        if len(asked) != 1:  # 0: answered from the cache, so not a measure of this path
            run.error = f"{len(asked)} provider calls, not 1"
        if run.path == "browser":
            root = page.locator(PICKER).first
            run.picker = {name: await root.get_attribute(f"data-{name}") for name in PICKER_DATA}
    except Exception as exc:  # a run that fails is reported as such; the others still count
        run.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        link.set_rate(None)
        await context.close()
    return run


async def drive(url: str, paths: list[str], photos: list[Path], reps: int, link: Uplink, fake: FakeLLM,
                limiter: str, seconds: float, log) -> tuple[list[Run], str]:
    """One untimed warm-up pick per path, then `reps` picks per path and condition, the paths taking turns."""
    from playwright.async_api import async_playwright

    runs: list[Run] = []
    pictures = iter(photos)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            version = browser.version
            for path in list(paths):
                picture = next(pictures)
                warm = await pick_to_card(browser, url, Run(path, "warm-up", picture.stat().st_size), picture,
                                          CONDITIONS[1], link, fake, limiter, seconds)
                if warm.error == "absent":
                    log(f"browser path: SKIPPED, the photo picker component ({PICKER}) is not on the page "
                        "(not merged yet?)")
                    paths.remove(path)
                elif warm.error:
                    raise RuntimeError(f"the {path} path's warm-up failed: {warm.error}")
            for condition in CONDITIONS:
                for rep in range(reps):
                    for path in paths:
                        picture = next(pictures)
                        run = await pick_to_card(browser, url, Run(path, condition.name, picture.stat().st_size),
                                                 picture, condition, link, fake, limiter, seconds)
                        runs.append(run)
                        log(f"{condition.name:26s} {path:7s} {rep + 1}/{reps}: {describe(run)}")
        finally:
            await browser.close()
    return runs, version


def describe(run: Run) -> str:
    """One run, for the log."""
    if run.error:
        return run.error
    shrink = f", shrink {run.picker.get('shrink-ms')} ms" if run.picker else ""
    return (f"card after {run.seconds:.2f} s (preview {run.accepted_s:.2f} s, provider asked {run.asked_s:.2f} s), "
            f"{run.devtools_bytes / 1000:.0f} KB (DevTools) / {run.proxy_bytes / 1000:.0f} KB (proxy) up{shrink}")


# -- report --------------------------------------------------------------------------------------

def median_max(values: list[float], fmt) -> str:
    """"median / max" of `values`, each written by `fmt`; "—" when there are none."""
    return f"{fmt(statistics.median(values))} / {fmt(max(values))}" if values else "—"


def kb(n: float) -> str:
    """Bytes as KB (thousands) below a million, MB above."""
    return f"{n / 1000:,.0f} KB" if n < 1e6 else f"{n / 1e6:.2f} MB"


def markdown(meta: dict, runs: list[Run], paths: list[str]) -> str:
    """A dated report: one row per path and condition, then the targets."""
    via = ("Chromium's network emulation (DevTools uploadThroughput)" if meta["limiter"] == "cdp"
           else "bench/uplink.py's token bucket (16 KB burst)")
    lines = [f"### {meta['date']}: a 12 MP JPEG, pick to card, {meta['reps']} runs per row, uplink cut by "
             + ("Chromium" if meta["limiter"] == "cdp" else "the proxy"),
             "",
             f"Machine: {meta['cpu']} ({meta['cpus']} cores, shared; load average {meta['load_before']} before, "
             f"{meta['load_after']} after), Python {meta['python']}, headless Chromium {meta['chromium']}, one "
             f"`streamlit run app.py` on the same cores. Photo: 4000×3000 JPEG, {kb(meta['photo_bytes'])} median, "
             f"EXIF orientation 6 and GPS, a new one per run. Provider: the fake (testkit/fake_llm) as RunPod, "
             f"answering after {meta['provider_s']:g} s. Uplink cut by {via}, no added latency, downlink not "
             f"limited; CPU slowed by DevTools (`Emulation.setCPUThrottlingRate`) where the row says so. The page "
             f"opens at full speed; the clock starts at the pick, 평가하기 is pressed as soon as the preview "
             f"({PREVIEW} …) shows, and stops when the card is drawn. Bytes: browser → server from the pick to "
             f"the card, as DevTools saw them (websocket payloads + HTTP bodies) and as the proxy counted them on "
             f"TCP (headers, framing, compression included). Total run {meta['seconds']:.0f} s.",
             "",
             "| path | uplink | pick → card, median / max | pick → preview | pick → provider asked | bytes up "
             "(DevTools), median / max | bytes up (proxy, TCP) | shrink in the page (data-shrink-ms) | JPEG made in "
             "the page (data-sent-bytes) | runs ok |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for path in paths:
        for condition in CONDITIONS:
            rows = [r for r in runs if r.path == path and r.condition == condition.name]
            ok = [r for r in rows if r.error is None]
            shrink = [float(r.picker["shrink-ms"]) for r in ok if r.picker.get("shrink-ms")]
            made = [int(r.picker["sent-bytes"]) for r in ok if r.picker.get("sent-bytes")]
            lines.append(
                f"| {path} | {condition.name} | {median_max([r.seconds for r in ok], lambda s: f'{s:.2f} s')} | "
                f"{median_max([r.accepted_s for r in ok], lambda s: f'{s:.2f} s')} | "
                f"{median_max([r.asked_s for r in ok], lambda s: f'{s:.2f} s')} | "
                f"{median_max([r.devtools_bytes for r in ok], kb)} | {median_max([r.proxy_bytes for r in ok], kb)} | "
                f"{median_max(shrink, lambda v: f'{v:.0f} ms') if path == 'browser' else '—'} | "
                f"{median_max(made, kb) if path == 'browser' else '—'} | "
                f"{len(ok)}/{len(rows)} |")
    lines += ["", "| target | path | measured (median / max) | result |", "|---|---|---|---|"]
    for path in paths:
        mine = [r for r in runs if r.path == path and r.error is None]
        slow = [r.seconds for r in mine if r.condition == CONDITIONS[0].name]
        fast = [r.seconds for r in mine if r.condition == CONDITIONS[1].name]
        shrink = [float(r.picker["shrink-ms"]) for r in mine
                  if r.condition == CONDITIONS[2].name and r.picker.get("shrink-ms")]
        lines.append(verdict_row(f"bytes uploaded for a 12 MP JPEG ≤ {BYTES_TARGET // 1000} KB (the larger count)",
                                 path, [max(r.devtools_bytes, r.proxy_bytes) for r in mine], kb, BYTES_TARGET))
        lines.append(verdict_row(f"pick → card at 5 Mbit/s, provider {meta['provider_s']:g} s, "
                                 f"≤ {CARD_TARGET_S:g} s", path, slow, lambda s: f"{s:.2f} s", CARD_TARGET_S))
        lines.append(verdict_row("pick → card at 50 Mbit/s", path, fast, lambda s: f"{s:.2f} s", None))
        if path == "browser":
            lines.append(verdict_row(f"shrink in the page, CPU 4×, ≤ {SHRINK_TARGET_MS:g} ms", path, shrink,
                                     lambda v: f"{v:.0f} ms", SHRINK_TARGET_MS))
    if meta["skipped"]:
        lines += ["", f"The browser path was not measured: {meta['skipped']}."]
    return "\n".join(lines) + "\n"


def verdict_row(what: str, path: str, values: list[float], fmt, limit: float | None) -> str:
    """One target's row: met when the median is within `limit` (None: reported only)."""
    if not values:
        result = "not measured"
    elif limit is None:
        result = "reported"
    else:
        result = "met" if statistics.median(values) <= limit else "**missed**"
    return f"| {what} | {path} | {median_max(values, fmt)} | {result} |"


def record(table: str) -> None:
    """Add the report at the end of the "Photos from the browser" section of bench/RESULTS.md (made when missing)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if HEADING not in text:
        text = (text.rstrip("\n") + f"\n\n{HEADING}\n\nA 12 MP phone photo from the pick to the result card in real "
                "Chromium on a slow uplink: shrunk in the page by the photo picker component (\"browser\") or sent "
                "whole to the plain uploader and shrunk by the server (\"server\").\n")
    start = text.index(HEADING) + len(HEADING)
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end
    RESULTS.write_text(text[:end].rstrip("\n") + "\n\n" + table + text[end:], encoding="utf-8")


def machine() -> dict:
    """What the numbers depend on."""
    cpu = platform.processor() or "?"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cpus": os.cpu_count(),
            "python": platform.python_version(), "load_before": " ".join(f"{v:.1f}" for v in os.getloadavg())}


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print the report, keep it (bench/out, bench/RESULTS.md); 1 when a run failed."""
    parser = argparse.ArgumentParser(prog="python -m bench.browser_photo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="server,browser", help="server, browser or both (default: both)")
    parser.add_argument("--reps", type=int, default=5, help="runs per path and condition (default 5)")
    parser.add_argument("--provider-seconds", type=float, default=4.0, help="the provider's answer time (default 4)")
    parser.add_argument("--limiter", choices=("cdp", "proxy"), default="cdp",
                        help="what cuts the uplink: Chromium's network emulation (default) or bench/uplink.py")
    parser.add_argument("--timeout", type=float, default=60, help="seconds any one step may take (default 60)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not Path(CHROMIUM).exists() or not set(paths) <= set(INPUTS):
        print("needs Debian's chromium (bash scripts/test.sh installs it) and --paths among server, browser",
              file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    began, meta = time.monotonic(), machine()
    with tempfile.TemporaryDirectory(prefix="browser-photo-") as tmp:
        work = Path(tmp)
        log("making the phone photos ...")
        photos = phone_photos(len(paths) * (1 + args.reps * len(CONDITIONS)), work)
        with FakeLLM(Reply(VALID, delay=args.provider_seconds)) as fake:
            env = app_env(RUNPOD_API_KEY="rpa-bench-not-real", RUNPOD_BASE_URL=fake.url,
                          RUNPOD_MODEL_NAME="clinic-derm-v1", SKIN_DIAGNOSIS_IMAGE_PROVIDER="runpod",
                          PROVIDER_FALLBACKS="none", HEDGE_AFTER_SECONDS="off", WARM_UP="false",
                          LLM_MAX_RETRIES="0", AUTH_MODE="off", DATA_DIR=str(work / "data"))
            with serve_app(env, work) as app_url, Uplink(int(app_url.rsplit(":", 1)[1])) as link:
                log(f"app on {app_url}, seen by the browser through the proxy on port {link.port}")
                measured = list(paths)
                runs, chromium = asyncio.run(drive(f"http://127.0.0.1:{link.port}/", measured, photos, args.reps,
                                                   link, fake, args.limiter, args.timeout, log))
    meta.update(reps=args.reps, limiter=args.limiter, provider_s=args.provider_seconds, chromium=chromium,
                photo_bytes=statistics.median(p for p in (r.photo_bytes for r in runs)) if runs else 0,
                load_after=" ".join(f"{v:.1f}" for v in os.getloadavg()), seconds=time.monotonic() - began,
                skipped="" if "browser" not in paths or "browser" in measured else
                f"the photo picker component ({PICKER}) was not on the page")
    table = markdown(meta, runs, measured)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "browser_photo.json").write_text(json.dumps({"meta": meta, "runs": [asdict(r) for r in runs]}, indent=1,
                                                       ensure_ascii=False), encoding="utf-8")
    if not args.no_record:
        record(table)
        log(f"appended to {RESULTS}")
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
