"""The load test for more than one server: two app processes, one Redis, twenty browser sessions.

Starts one `redis-server`, a fake OpenAI-compatible provider (testkit/fake_llm, which writes
each case's unique token into the findings it returns) and TWO `streamlit run app.py`
processes with REDIS_URL set, each with its own DATA_DIR (as two machines would have), all
on 127.0.0.1. Then, in headless Chromium (Debian's), 20 browser sessions, half on each
server as a sticky-session proxy would place them:

  round 0  one session alone, for the uncontended latency of this machine;
  round 1  each session types its own case (with a unique token) and presses 평가하기,
           all at once; the provider is asked 20 times;
  round 2  each session opens the OTHER server and assesses the same case: the answer
           must come from the shared Redis cache (no provider call, the card says 캐시).

Measured: per-session latency (press to the card showing the session's own token) and
throughput. Checked: no page ever showed another session's token (polled while waiting,
and the final card), every round-1 card is fresh and every round-2 card cached, the
metrics in Redis count every assessment of both servers, and no Redis key carries case
text. Prints a Markdown report and appends it to bench/RESULTS.md ("More than one
server"); bounded by --timeout, everything it started is stopped at the end.

    .venv/bin/python -m bench.multi_server                 # 20 sessions, ~1-2 min
    .venv/bin/python -m bench.multi_server --sessions 6 --no-record
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import ExitStack, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import redis

from storage.redis_client import PREFIX
from storage.redis_metrics import METRICS_KEY, MetricsFeed
from testkit.answers import DISCLAIMER, xml_answer
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.fake_llm import FakeLLM, RecordedRequest, Reply
from testkit.processes import stop
from testkit.redis_server import RedisServer, free_port
from utils.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).parent / "out"
RESULTS = Path(__file__).parent / "RESULTS.md"
HEADING = "## More than one server (`python -m bench.multi_server`)"
TOKEN = re.compile(r"TOKEN-[0-9a-f]{6}-\d+")

CASES = [
    "코 옆 5mm 진주빛 구진, 6개월간 서서히 커짐, 가끔 출혈",
    "등에 있는 비대칭 흑갈색 반점, 최근 색이 변함",
    "손등의 거친 각질성 구진, 햇빛 노출 부위",
    "얼굴의 노란빛 작은 구진 여러 개, 가운데 함몰",
    "두피의 가려운 붉은 판, 1년째 각질",
]


@dataclass
class Session:
    """One browser session: its case, and what it saw in each round it took part in."""

    number: int
    token: str
    text: str
    rounds: dict[str, dict] = field(default_factory=dict)  # round -> server, latency_s, cached, foreign, error


@dataclass(frozen=True)
class Round:
    """One step of the run: who takes part, on which server, and what the cards must say."""

    name: str
    what: str
    sessions: list[Session]
    other_server: bool       # each session on the server it did not use before
    cached: bool             # every card must come from the shared cache (and no provider be asked)


# -- processes ---------------------------------------------------------------------------------

def answer_for(token: str) -> str:
    """A complete contract answer whose findings name `token`."""
    summary = f"코 옆의 진주양 구진으로 기저세포암을 의심합니다 (사례 {token})."
    return xml_answer(1, 78, "기저세포암", summary, [(11, 12, "피지샘증식증"), (8, 6, "편평세포암")], tail=DISCLAIMER)


def echo_token(request: RecordedRequest) -> str:
    """The fake provider's answer: the case's own token in the findings, so a card shows whose case it answers."""
    found = TOKEN.search(request.text())
    return answer_for(found.group(0) if found else "없음")


def app_env(data_dir: Path, redis_url: str, provider_url: str) -> dict[str, str]:
    """The app's environment: the fake provider as OpenAI, shared Redis, no sign-in, this server's own data."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "RUNPOD_", "LOCAL_", "SKIN_DIAGNOSIS_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy")}
    env.update(OPENAI_API_KEY="sk-bench-not-real", OPENAI_BASE_URL=provider_url, OPENAI_MODEL="gpt-4o-mini",
               SKIN_DIAGNOSIS_PROVIDER="openai", PROVIDER_FALLBACKS="none", HEDGE_AFTER_SECONDS="off",
               WARM_UP="false", REDIS_URL=redis_url, AUTH_MODE="off", DATA_DIR=str(data_dir),
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    return env


def start_app(index: int, work: Path, redis_url: str, provider_url: str) -> tuple[subprocess.Popen, str, Path]:
    """One `streamlit run app.py` on a free port of 127.0.0.1; returns the process, its URL and its DATA_DIR."""
    port = free_port()
    data_dir = work / f"server{index}"
    log = open(work / f"server{index}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
        cwd=work, env=app_env(data_dir, redis_url, provider_url), stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return proc, f"http://127.0.0.1:{port}/", data_dir


def wait_http(url: str, seconds: float) -> None:
    """Wait until `url` answers 200."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not come up within {seconds:g} s")


# -- browser -----------------------------------------------------------------------------------

async def open_page(browser, url: str, seconds: float):
    """A new browser context (its own cookies, so its own Streamlit session) showing the app."""
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page = await context.new_page()
    await page.goto(url, timeout=seconds * 1000)
    await expect(page.get_by_role("heading", name="피부 병변 AI 평가")).to_be_visible(timeout=seconds * 1000)
    return context, page


async def assess(page, session: Session, name: str, seconds: float) -> None:
    """Press 평가하기 (the case is typed), and watch until the card shows the session's own token."""
    started = time.monotonic()
    foreign: set[str] = set()
    await page.get_by_role("button", name="평가하기").click()
    deadline = started + seconds
    latency, seen_at, card = None, None, ""
    while time.monotonic() < deadline:
        # Everything the page shows, the streaming findings included: no other session's token, ever.
        # textContent, not innerText: no layout per look, so watching 20 pages does not load the machine.
        shown, card = await page.evaluate(_LOOK)
        foreign |= set(TOKEN.findall(shown)) - {session.token}
        if latency is None and session.token in card:
            seen_at = time.monotonic()
            latency = seen_at - started
        # The card is drawn element by element: its caption (provider · time · 캐시 or 새 답변) comes last.
        if latency is not None and ("캐시" in card or "새 답변" in card):
            break
        await asyncio.sleep(0.1)
    session.rounds[name].update(
        latency_s=latency, seen_at=seen_at, foreign=sorted(foreign), cached=("캐시" in card) if card else None,
        error=None if latency is not None else f"no card with its token within {seconds:g} s")


# The main area's text and the result card's text.
_LOOK = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const card = document.querySelector('.st-key-result_card');
  return [main ? main.textContent : '', card ? card.textContent : ''];
}"""


async def drive(app_urls: list[str], plan: list[Round], seconds: float, fake: FakeLLM, log) -> dict[str, dict]:
    """Every round of `plan`; returns per round: wall time, provider calls, and its span in wall-clock time."""
    from playwright.async_api import async_playwright

    done: dict[str, dict] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for step in plan:
                for s in step.sessions:
                    # Split evenly, as a sticky-session proxy would; "other": as after a failover.
                    s.rounds[step.name] = {"server": (s.number + step.other_server) % len(app_urls)}
                log(f"round {step.name}: opening {len(step.sessions)} sessions")
                opened = await asyncio.gather(*(open_page(browser, app_urls[s.rounds[step.name]["server"]], seconds)
                                                for s in step.sessions))
                # Every case typed first, then all press at once.
                await asyncio.gather(*(page.get_by_role("textbox", name="증상 및 소견").fill(s.text)
                                       for s, (_, page) in zip(step.sessions, opened)))
                calls_before = len(fake.chat_requests)
                log(f"round {step.name}: {len(step.sessions)} sessions press 평가하기 at once")
                began, started = time.time(), time.monotonic()
                await asyncio.gather(*(assess(page, s, step.name, seconds)
                                       for s, (_, page) in zip(step.sessions, opened)))
                last = max((s.rounds[step.name]["seen_at"] or time.monotonic()) for s in step.sessions)
                done[step.name] = {"wall_s": last - started, "from": began, "until": time.time(),
                                   "provider_calls": len(fake.chat_requests) - calls_before}
                for context, _ in opened:
                    await context.close()
        finally:
            await browser.close()
    return done


# -- checks and report -------------------------------------------------------------------------

def history_count(data_dir: Path) -> int | None:
    """Rows in one server's own SQLite history (None when it has none)."""
    path = data_dir / "app.db"
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM assessments").fetchone()[0]


def redis_checks(url: str, sessions: list[Session]) -> dict:
    """What Redis holds after the run: metrics records, cached answers, and keys that name a case (must be 0)."""
    client = redis.Redis.from_url(url)
    keys = [k.decode("utf-8", "replace") for k in client.scan_iter(count=1000)]
    words = [s.token for s in sessions] + [w for s in sessions for w in s.text.split()[:2]]
    return {"keys": len(keys), "answers": sum(k.startswith(PREFIX + "answer:") for k in keys),
            "outside_prefix": sum(not k.startswith(PREFIX) for k in keys),
            "keys_with_case_text": sum(any(w in k for w in words) for k in keys),
            "metrics_records": client.zcard(METRICS_KEY),
            "metrics_rows": MetricsFeed(client).rows() or []}


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} s"


def markdown(meta: dict, plan: list[Round], done: dict, shared: dict, histories: list) -> str:
    """The report: one table row per round, then the shared-state checks and a verdict."""
    lines = [f"### {meta['date']}: {meta['servers']} app processes, {meta['sessions']} browser sessions",
             "",
             f"Machine: {meta['cpu']} ({meta['cpus']} cores), {meta['platform']}, Python {meta['python']}; "
             f"Redis {meta['redis']} (Debian), headless Chromium (Debian), one browser context per session, "
             f"all on the same cores as the app processes. Provider: the fake OpenAI-compatible server "
             f"(testkit/fake_llm.py), first token after {meta['delay']:g} s, then the answer streamed in "
             f"8-character chunks {meta['chunk_delay'] * 1000:g} ms apart (~{meta['stream_s']:.1f} s), each "
             f"answer naming its case's token. Everything on 127.0.0.1. Total run {meta['seconds']:.0f} s.",
             "",
             "Latency is per session, from pressing 평가하기 to its card showing its own token in the browser; "
             "*engine* is the same assessments' time inside the app processes (the metrics records in Redis). "
             "Throughput: cards per second of the round's wall time (first press to the last card showing its token).",
             "",
             "| round | what | sessions | cards with own token | p50 | p95 | max | engine p50 / p95 | wall "
             "| throughput | provider calls | cached cards | other sessions' results seen |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    ok_all = True
    for step in plan:
        got = done[step.name]
        seen = [s.rounds[step.name] for s in step.sessions]
        lat = [r["latency_s"] for r in seen if r.get("latency_s") is not None]
        cached = sum(bool(r.get("cached")) for r in seen)
        foreign = sum(bool(r.get("foreign")) for r in seen)
        engine = [r["latency_ms"] / 1000 for r in shared["metrics_rows"]
                  if got["from"] - 1 <= r["created_at"] <= got["until"] + 1 and r["latency_ms"] is not None]
        wall = got["wall_s"]
        lines.append(f"| {step.name} | {step.what} | {len(seen)} | {len(lat)} | "
                     f"{seconds(percentile(lat, 50))} | {seconds(percentile(lat, 95))} | "
                     f"{seconds(max(lat) if lat else None)} | "
                     f"{seconds(percentile(engine, 50))} / {seconds(percentile(engine, 95))} | "
                     f"{wall:.1f} s | {len(lat) / wall:.2f} /s | {got['provider_calls']} | {cached} | {foreign} |")
        ok_all &= (len(lat) == len(seen) and foreign == 0 and cached == (len(seen) if step.cached else 0)
                   and got["provider_calls"] == (0 if step.cached else len(seen)))
    total = sum(len(step.sessions) for step in plan)
    servers = [f"server {i + 1}: {n if n is not None else 0}" for i, n in enumerate(histories)]
    ok_all &= (shared["metrics_records"] == total and sum(n or 0 for n in histories) == total
               and shared["keys_with_case_text"] == 0 and shared["outside_prefix"] == 0)
    lines += ["",
              f"Shared state after the run: {shared['metrics_records']} metrics records in Redis for {total} "
              f"assessments (each server's own SQLite history: {', '.join(servers)}); "
              f"{shared['answers']} cached answers; {shared['keys']} keys, {shared['keys_with_case_text']} "
              f"naming a case, {shared['outside_prefix']} outside `{PREFIX}`; "
              f"Redis warnings in the app logs: {meta['redis_warnings']}.",
              "",
              "Verdict: " + ("**pass**: every session saw only its own result; the second round was answered "
                             "entirely from the cache the other server filled; the metrics count both servers."
                             if ok_all else "**FAIL**: see the table and bench/out/multi_server.json.")]
    return "\n".join(lines) + "\n"


def record(table: str) -> None:
    """Append the report to bench/RESULTS.md under the "More than one server" heading."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    addition = ("" if HEADING in text else f"\n{HEADING}\n\n"
                "Two `streamlit run app.py` processes sharing one Redis (REDIS_URL): the answer cache, the "
                "jobs and the metrics live there; each process keeps its own SQLite history.\n") + "\n" + table
    RESULTS.write_text(text.rstrip("\n") + "\n" + addition, encoding="utf-8")


def machine() -> dict:
    """What the numbers depend on."""
    cpu = platform.processor() or ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = "?"
    with suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=5).stdout
        redis_version = re.search(r"v=(\S+)", out).group(1)
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "redis": redis_version}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.multi_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions (default 20)")
    parser.add_argument("--servers", type=int, default=2, help="app processes (default 2)")
    parser.add_argument("--delay", type=float, default=1.0, help="provider's seconds to first token (default 1)")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between streamed chunks")
    parser.add_argument("--timeout", type=float, default=240, help="give up after this many seconds (default 240)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists() or shutil.which("redis-server") is None:
        print("needs Debian's chromium and redis-server (bash scripts/test.sh installs both)", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    began = time.monotonic()
    run = uuid.uuid4().hex[:6]
    sessions = [Session(n, f"TOKEN-{run}-{n}", f"{CASES[n % len(CASES)]} (사례 TOKEN-{run}-{n})")
                for n in range(args.sessions + 1)]
    alone, sessions = sessions[-1], sessions[:-1]
    plan = [Round("0", "one session alone (baseline)", [alone], other_server=False, cached=False),
            Round("1", "new cases, half per server, all at once", sessions, other_server=False, cached=False),
            Round("2", "same cases, each on the OTHER server", sessions, other_server=True, cached=True)]
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="multi-server-")))
        (work / "redis").mkdir()
        server = stack.enter_context(RedisServer(directory=work / "redis"))
        fake = stack.enter_context(FakeLLM(Reply("", delay=args.delay, chunk_delay=args.chunk_delay)))
        fake.responder = lambda request: Reply(echo_token(request), delay=args.delay, chunk_delay=args.chunk_delay)
        log(f"redis on {server.url}, fake provider on {fake.url}")
        apps = []
        for index in range(args.servers):
            proc, url, data_dir = start_app(index, work, server.url, fake.url)
            stack.callback(stop, proc)
            apps.append((proc, url, data_dir))
        for proc, url, _ in apps:
            wait_http(url + "_stcore/health", 90)
        log("app processes up: " + ", ".join(url for _, url, _ in apps))
        left = args.timeout - (time.monotonic() - began)
        try:
            done = asyncio.run(asyncio.wait_for(
                drive([url for _, url, _ in apps], plan, min(90.0, left), fake, log), timeout=left))
        except TimeoutError:
            log(f"gave up after {args.timeout:g} s")
            return 1
        time.sleep(0.5)  # the last history rows are written just after the last card is drawn
        shared = redis_checks(server.url, [alone, *sessions])
        histories = [history_count(data_dir) for _, _, data_dir in apps]
        # A Redis call that timed out under load would show here (and as a cache miss).
        warnings = sum((work / f"server{i}.log").read_text(errors="replace").count("Redis unavailable")
                       for i in range(args.servers))
        meta = {**machine(), "servers": args.servers, "sessions": args.sessions, "delay": args.delay,
                "chunk_delay": args.chunk_delay, "stream_s": len(answer_for(alone.token)) / 8 * args.chunk_delay,
                "redis_warnings": warnings, "seconds": time.monotonic() - began}
    table = markdown(meta, plan, done, shared, histories)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    shared.pop("metrics_rows", None)
    (OUT / "multi_server.json").write_text(json.dumps(
        {"meta": meta, "rounds": done, "shared": shared, "histories": histories,
         "sessions": [asdict(s) for s in [alone, *sessions]]}, indent=1, ensure_ascii=False), encoding="utf-8")
    if not args.no_record:
        record(table)
        log(f"appended to {RESULTS}")
    return 0 if "**pass**" in table else 1


if __name__ == "__main__":
    sys.exit(main())
