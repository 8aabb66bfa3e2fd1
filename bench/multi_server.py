"""The load test for more than one server: two app processes, PostgreSQL, Redis, twenty browser sessions.

Starts a throw-away PostgreSQL cluster (testkit/postgres.py), one `redis-server`, a fake
OpenAI-compatible provider (testkit/fake_llm, which writes each case's unique token into the
findings it returns, and waits long for a case marked SLOW-) and TWO `streamlit run app.py`
processes with DATABASE_URL and REDIS_URL set and sign-in on (AUTH_MODE=accounts), each with
its own DATA_DIR, all on 127.0.0.1. One account is added once, with server 1's settings
(`cli.py users add`), and one API token (`cli.py tokens add`). Then, in headless Chromium:

  sign-in  the account signs in through each server's own form, and server 1's cookie opens
           server 2 directly (bench/shared_database.py);
  round 0  one session alone, for the uncontended latency of this machine;
  round 1  20 sessions, half per server, each signed in, types its own case (with a unique
           token) and presses 평가하기, all at once; the provider is asked 20 times;
  round 2  each session opens the OTHER server and assesses the same case: the answer
           must come from the shared Redis cache (no provider call, the card says 캐시).

Then: each server's API lists every assessment of both (the history is in PostgreSQL); a
background job's server is killed (SIGKILL) mid-job and the other server's API must show the
job interrupted, timed from the kill, with the jobs in Redis and again (two fresh servers
without REDIS_URL) with the jobs in PostgreSQL; finally bench/history_queries.py times the
History page's queries over 100 000 rows and the write per assessment, on the same cluster
and on SQLite. Checked besides: no page ever showed another session's token, every round-1
card is fresh and every round-2 card cached, the metrics in Redis count every assessment, and
no Redis key carries case text. Prints a Markdown report and appends it to bench/RESULTS.md
("More than one server"); bounded by --timeout, everything it started is stopped at the end.

    .venv/bin/python -m bench.multi_server                 # everything, ~6-8 min on 2 cores
    .venv/bin/python -m bench.multi_server --sessions 6 --rows 20000 --no-record
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack, suppress
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import redis
import sqlalchemy as sa

from bench import history_queries, shared_database
from bench.browser_rounds import CASES, Round, Session, answer_for, drive, echo_token
from bench.shared_database import SLOW, App, server_env, start_app, wait_up
from storage.metrics.redis import METRICS_KEY, MetricsFeed
from storage.redis_client import PREFIX
from storage.schema import assessments
from storage.store import Store
from testkit.browser import CHROMIUM
from testkit.fake_llm import FakeLLM, RecordedRequest, Reply
from testkit.postgres import PostgresServer, postgres_bindir
from testkit.processes import stop
from testkit.redis_server import RedisServer
from utils.stats import percentile

OUT = Path(__file__).parent / "out"
RESULTS = Path(__file__).parent / "RESULTS.md"
HEADING = "## More than one server (`python -m bench.multi_server`)"
SLOW_SECONDS = 120.0  # the SLOW- job's provider wait: far longer than the kill takes
INTERRUPT_TARGET_S = 20.0  # a lease (15 s) runs out at most 15 s after the kill, and a keeper looks every 5 s


# -- checks and report -------------------------------------------------------------------------

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


def markdown(meta: dict, plan: list[Round], done: dict, shared: dict, db: dict) -> str:
    """The report: one table row per round, the shared-state checks, the shared database's, the queries, a verdict."""
    lines = [f"### {meta['date']}: {meta['servers']} app processes, PostgreSQL and Redis, {meta['sessions']} "
             "browser sessions",
             "",
             f"Machine: {meta['cpu']} ({meta['cpus']} cores), {meta['platform']}, Python {meta['python']}; "
             f"PostgreSQL {meta['postgres']} and Redis {meta['redis']} (Debian), headless Chromium (Debian), one "
             f"browser context per session, all on the same cores as the app processes. Provider: the fake "
             f"OpenAI-compatible server (testkit/fake_llm.py), first token after {meta['delay']:g} s, then the "
             f"answer streamed in 8-character chunks {meta['chunk_delay'] * 1000:g} ms apart "
             f"(~{meta['stream_s']:.1f} s), each answer naming its case's token. Everything on 127.0.0.1. Sign-in "
             f"on (AUTH_MODE=accounts): every session signs in first. Total run {meta['seconds']:.0f} s.",
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
    ok_all &= (shared["metrics_records"] == total and db["history_rows"] == total
               and shared["keys_with_case_text"] == 0 and shared["outside_prefix"] == 0)
    lines += ["",
              f"Shared state after the rounds: {shared['metrics_records']} metrics records in Redis and "
              f"{db['history_rows']} history rows in PostgreSQL for {total} assessments; "
              f"{shared['answers']} cached answers; {shared['keys']} Redis keys, {shared['keys_with_case_text']} "
              f"naming a case, {shared['outside_prefix']} outside `{PREFIX}`; "
              f"Redis warnings in the app logs: {meta['redis_warnings']}.", ""]
    table, ok_db = database_table(db, total)
    lines += table
    ok_all &= ok_db
    if db.get("queries"):
        lines += ["", history_queries.markdown(db["queries"]).rstrip("\n")]
        ok_all &= all(t["pass"] for t in db["queries"]["timings"])
    lines += ["", "Verdict: " + ("**pass**: every session saw only its own result; the second round was answered "
                                 "entirely from the cache the other server filled; the metrics, the accounts, the "
                                 "history and the jobs are shared; every query and write within its target."
                                 if ok_all else "**FAIL**: see the tables and bench/out/multi_server.json.")]
    return "\n".join(lines) + "\n"


def database_table(db: dict, total: int) -> tuple[list[str], bool]:
    """The shared database's checks and measures, as table rows, and whether all passed."""
    sign_in, history = db["sign_in"], db["history"]
    # Not strict: a sign-in that failed before its form was sent has no time.
    signed_in = zip(sign_in["signed_in"], sign_in["seconds"], strict=False)
    rows = [("an account added once (`cli.py users add`, server 1's settings) signs in through each server's form",
             "every server", ", ".join(f"server {i + 1}: {'yes' if ok else 'NO'} ({t:.1f} s to the app)"
                                       for i, (ok, t) in enumerate(signed_in)),
             all(sign_in["signed_in"]) and len(sign_in["signed_in"]) == db["servers"]),
            ("server 1's session cookie opens server 2 without the form", "yes",
             "yes" if sign_in["cookie_opens_other"] else "no", bool(sign_in["cookie_opens_other"])),
            ("history complete on each: `GET /api/v1/analyses` lists every assessment of both servers",
             f"{total} on each, the same ids",
             f"{' / '.join(map(str, history['listed']))}, {'the same' if history['same_on_each'] else 'DIFFERENT'} "
             f"ids; cases missing: {len(history['cases_missing'])}", history["ok"])]
    for kill in db["kills"]:
        measured = (f"{kill['interrupted_after_s']:.1f} s after server {kill['killed']} was killed, on server "
                    f"{kill['shown_by']} ({' → '.join(kill['statuses'])})" if kill["ok"] else kill["error"])
        rows.append((f"a server killed (SIGKILL) mid-job, jobs in {kill['jobs']}: the job shows interrupted on the "
                     "other", f"≤ {INTERRUPT_TARGET_S:g} s (lease 15 s, keeper every 5 s)", measured,
                     kill["ok"] and kill["interrupted_after_s"] <= INTERRUPT_TARGET_S))
    lines = ["| shared database | target | measured | result |", "|---|---|---|---|"]
    lines += [f"| {what} | {target} | {measured} | {'pass' if ok else '**FAIL**'} |"
              for what, target, measured, ok in rows]
    return lines, all(ok for *_, ok in rows)


def record(table: str) -> None:
    """Add the report to bench/RESULTS.md at the end of the "More than one server" section (made when missing)."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if HEADING not in text:
        text = (text.rstrip("\n") + f"\n\n{HEADING}\n\nTwo `streamlit run app.py` processes sharing one PostgreSQL "
                "(DATABASE_URL: accounts, sessions, tokens, history) and one Redis (REDIS_URL: the answer cache, the "
                "jobs and the metrics).\n")
    start = text.index(HEADING) + len(HEADING)
    end = text.find("\n## ", start)  # the next section, if any: the report goes before it
    end = len(text) if end < 0 else end
    RESULTS.write_text(text[:end].rstrip("\n") + "\n\n" + table + text[end:], encoding="utf-8")


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
    postgres_version, bindir = "?", postgres_bindir()
    with suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([str(bindir / "postgres") if bindir else "postgres", "--version"], capture_output=True,
                             text=True, timeout=5).stdout
        postgres_version = found.group(1) if (found := re.search(r"(\d+\.\d+)", out)) else "?"
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu, "cpus": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(), "redis": redis_version,
            "postgres": postgres_version}


def history_rows(database_url: str) -> int:
    """Rows in the shared history."""
    store = Store(database_url, pool_size=1)
    try:
        with store.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(assessments)).scalar() or 0
    finally:
        store.dispose()


def started(stack: ExitStack, work: Path, first: int, count: int, **settings) -> list[App]:
    """`count` app servers with `settings` (see `server_env`), up; each stopped when `stack` closes."""
    apps = [start_app(first + i, work, server_env(work, first + i, **settings)) for i in range(count)]
    for app in apps:
        stack.callback(stop, app.proc)
    wait_up(apps)
    return apps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.multi_server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="browser sessions (default 20)")
    parser.add_argument("--servers", type=int, default=2, help="app processes (default 2)")
    parser.add_argument("--delay", type=float, default=1.0, help="provider's seconds to first token (default 1)")
    parser.add_argument("--chunk-delay", type=float, default=0.02, help="seconds between streamed chunks")
    parser.add_argument("--rows", type=int, default=100_000, help="history rows for the query timings (default "
                        "100 000; 0: skip them)")
    parser.add_argument("--timeout", type=float, default=1200, help="give up after this many seconds (default 1200)")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to bench/RESULTS.md")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists() or shutil.which("redis-server") is None or postgres_bindir() is None:
        print("needs Debian's chromium, redis-server and postgresql (bash scripts/test.sh installs them)",
              file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def respond(request: RecordedRequest) -> Reply:
        wait = SLOW_SECONDS if SLOW in request.text() else args.delay
        return Reply(echo_token(request), delay=wait, chunk_delay=args.chunk_delay)

    def out_of_time(signum, frame) -> None:
        raise TimeoutError

    began = time.monotonic()
    run = uuid.uuid4().hex[:6]
    sessions = [Session(n, f"TOKEN-{run}-{n}", f"{CASES[n % len(CASES)]} (사례 TOKEN-{run}-{n})")
                for n in range(args.sessions + 1)]
    alone, sessions = sessions[-1], sessions[:-1]
    plan = [Round("0", "one session alone (baseline)", [alone], other_server=False, cached=False),
            Round("1", "new cases, half per server, all at once", sessions, other_server=False, cached=False),
            Round("2", "same cases, each on the OTHER server", sessions, other_server=True, cached=True)]
    # Everything below is bounded: past --timeout the ExitStack unwinds and stops every process it started.
    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.timeout))
    try:
        with ExitStack() as stack:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="multi-server-")))
            (work / "redis").mkdir()
            pg = stack.enter_context(PostgresServer())
            database_url = pg.create_database()
            server = stack.enter_context(RedisServer(directory=work / "redis"))
            fake = stack.enter_context(FakeLLM(Reply("", delay=args.delay, chunk_delay=args.chunk_delay)))
            fake.responder = respond
            log(f"postgresql on {pg.port}, redis on {server.url}, fake provider on {fake.url}")
            settings = {"database_url": database_url, "provider_url": fake.url}
            token = shared_database.add_user_and_token(server_env(work, 0, redis_url=server.url, **settings), work)
            apps = started(stack, work, 0, args.servers, redis_url=server.url, **settings)
            log("app processes up: " + ", ".join(app.url for app in apps))
            left = args.timeout - (time.monotonic() - began)
            done = asyncio.run(asyncio.wait_for(drive(
                [app.url for app in apps], plan, min(90.0, left), fake, log,
                first=lambda browser: shared_database.sign_in_on_each(browser, apps, 60)), timeout=left))
            time.sleep(0.5)  # the last history rows are written just after the last card is drawn
            shared = redis_checks(server.url, [alone, *sessions])
            total = sum(len(step.sessions) for step in plan)
            db = {"servers": args.servers, "sign_in": done.pop("first"), "history_rows": history_rows(database_url),
                  "history": shared_database.history_on_each(apps, token, total, [s.token for s in [alone, *sessions]])}
            # A Redis call that timed out under load would show here (and as a cache miss).
            warnings = sum(app.log.read_text(errors="replace").count("Redis unavailable") for app in apps)
            log("killing the server that runs a job (jobs in Redis)")
            db["kills"] = [{"jobs": "Redis", **shared_database.kill_mid_job(
                apps, token, database_url=database_url, redis_url=server.url, seconds=60)}]
            for app in apps:
                stop(app.proc)
            log("two servers without REDIS_URL: killing the one that runs a job (jobs in PostgreSQL)")
            apps = started(stack, work, args.servers, 2, redis_url=None, **settings)
            db["kills"].append({"jobs": "PostgreSQL", **shared_database.kill_mid_job(
                apps, token, database_url=database_url, redis_url=None, seconds=60)})
            for app in apps:
                stop(app.proc)
            if args.rows:
                url_of = stack.enter_context(history_queries.databases(pg))
                db["queries"] = history_queries.run(url_of, rows=args.rows, reps=50, writes=500,
                                                    databases=("postgresql", "sqlite"), log=log)
            meta = {**machine(), "servers": args.servers, "sessions": args.sessions, "delay": args.delay,
                    "chunk_delay": args.chunk_delay, "stream_s": len(answer_for(alone.token)) / 8 * args.chunk_delay,
                    "redis_warnings": warnings, "seconds": time.monotonic() - began}
    except TimeoutError:
        log(f"gave up after {args.timeout:g} s")
        return 1
    finally:
        signal.alarm(0)
    table = markdown(meta, plan, done, shared, db)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    shared.pop("metrics_rows", None)
    (OUT / "multi_server.json").write_text(json.dumps(
        {"meta": meta, "rounds": done, "shared": shared, "database": db,
         "sessions": [asdict(s) for s in [alone, *sessions]]}, indent=1, ensure_ascii=False), encoding="utf-8")
    if not args.no_record:
        record(table)
        log(f"appended to {RESULTS}")
    return 0 if "**pass**" in table else 1


if __name__ == "__main__":
    sys.exit(main())
