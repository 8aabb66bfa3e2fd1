"""The HTTP API under load: 50 clients at once against one app server and a simulated hosted provider.

    .venv/bin/python -m bench.api_load                  # 50 clients × 4 assessments each, two tiers (~2 min)
    .venv/bin/python -m bench.api_load --clients 10 --requests 2
    .venv/bin/python -m bench.api_load --clients 200 --fixed-seconds 3.4 --max-concurrent 256   # the throughput run

What runs: `python -m bench.simulator` in its own process (the hosted profile: first tokens
lognormal around 0.5 s, 80 tokens/s, 2 % slow tails of 5-20 s, 0.5 % 5xx, 0.3 % hangs), once
with OpenAI's tier-1 rate limit (500 requests a minute, a bucket of one second's worth: what a
new clinic account has) and once with 10,000 a minute (a paid tier: what is left is the app);
one `streamlit run app.py` pointed at it as OpenAI (fallback and hedging as the app's
defaults); an account and a bearer token made with `cli.py`; and N asyncio clients, each
posting its own cases to `POST /api/v1/diagnose/skin-lesion` one after the other. Every
description is unique, so no answer comes from the cache.

Reported: end-to-end latency (p50, p95, max) as the client sees it, answers per second, and
every status code with its count (a 503 is the app saying no provider answered within the
budget; a 429 its own rate limit, which this benchmark raises out of the way), and the app
server's CPU time per answer (its process's user + system time over the run, from /proc).
With `--fixed-seconds S` the simulated provider answers every request in about S seconds
(no tails, failures or rate limit: what is left is the app), and one client's time is measured
first on the same server, for the p95 ÷ one-client ratio. Written to bench/out/api_load.md and
.json; copy the table into bench/RESULTS.md with `uptime`'s load. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

# The clients' pool: httpx2's, as the app's own provider calls use. Classic httpx rescans every connection on
# each request, which with 200 clients cost the measuring process ~21 ms of CPU per request and capped the run.
import httpx2 as httpx

from bench.simulator import SimulatorProcess
from testkit.app_server import app_env, serve_app
from utils.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = Path(__file__).resolve().parent / "out"


def bench_env(data_dir: Path, provider_url: str, clients: int, max_concurrent: int | None = None) -> dict[str, str]:
    """The app's environment: the simulated provider as OpenAI, its own data, limits out of the measurement's way."""
    return app_env(OPENAI_API_KEY="sk-bench-not-real", OPENAI_BASE_URL=provider_url, OPENAI_MODEL="gpt-4o-mini",
                   SKIN_DIAGNOSIS_PROVIDER="openai", WARM_UP="false", DATA_DIR=str(data_dir), AUTH_MODE="accounts",
                   API_RATE_PER_MINUTE="0", API_MAX_CONCURRENT=str(max_concurrent or min(max(clients, 1), 256)))


def server_pid(url: str) -> int | None:
    """The process serving `url` (the `streamlit run` started with its port), found in /proc; None elsewhere."""
    port = url.rsplit(":", 1)[-1]
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(args) and b"--server.port" in args and port.encode() in args:
            return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` so far (Linux /proc); None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_token(env: dict[str, str], cwd: Path) -> str:
    """A user and a bearer token made with the command line, as an operator would."""
    subprocess.run([sys.executable, str(ROOT / "cli.py"), "users", "add", "bench", "--password-stdin"],
                   input="bench-password-not-real\n", text=True, env=env, cwd=cwd, check=True, capture_output=True)
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "tokens", "add", "bench", "--name", "load"],
                          text=True, env=env, cwd=cwd, check=True, capture_output=True)
    return done.stdout.strip().splitlines()[-1]


async def client(http: httpx.AsyncClient, url: str, token: str, index: int, requests: int,
                 samples: list[float], statuses: Counter) -> None:
    """One clinic system posting its cases one after the other."""
    for n in range(requests):
        body = {"lesion_description": f"환자 {index}-{n}: 코 옆 2 cm 진주빛 구진, 중앙 궤양, 6개월간 천천히 커짐",
                "additional_info": "65세 남성, 야외 작업"}
        started = time.perf_counter()
        try:
            response = await http.post(f"{url}/api/v1/diagnose/skin-lesion", json=body,
                                       headers={"Authorization": f"Bearer {token}"})
            code = str(response.status_code)
            if response.status_code != 200:  # the API's own error word (never patient text): why it refused
                code += f" {response.json().get('error', '?')}"
            statuses[code] += 1
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1
        samples.append(time.perf_counter() - started)


async def load(url: str, token: str, clients: int, requests: int) -> dict:
    """Run every client at once; the figures of the whole run."""
    samples: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http, url, token, i, requests, samples, statuses) for i in range(clients)))
    wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(samples), "wall_s": wall,
            "answers_per_s": statuses.get("200", 0) / wall if wall else 0.0,
            "p50_s": percentile(samples, 50), "p95_s": percentile(samples, 95), "max_s": max(samples, default=None),
            "statuses": dict(sorted(statuses.items()))}


def markdown(results: list[dict]) -> str:
    """The results as the table bench/RESULTS.md keeps, one row per provider rate limit."""
    lines = ["| provider limit | clients | requests | p50 | p95 | max | answers/s | API statuses | provider statuses |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        seconds = [f"{r[k]:.2f} s" if r[k] is not None else "—" for k in ("p50_s", "p95_s", "max_s")]
        api = ", ".join(f"{code}: {n}" for code, n in r["statuses"].items())
        upstream = ", ".join(f"{code}: {n}" for code, n in sorted(r["provider_statuses"].items()))
        limit = f"{r['rpm']:,.0f}/min" if r["rpm"] else f"none, answers in {r['fixed_seconds']:g} s"
        lines.append(f"| {limit} | {r['clients']} | {r['requests']} | {' | '.join(seconds)} | "
                     f"{r['answers_per_s']:.1f} | {api} | {upstream} |")
    extra = [r for r in results if r.get("one_client_s") or r.get("cpu_ms_per_answer")]
    if extra:
        lines += ["", "| clients | one client (median) | p95 ÷ one client | app CPU per answer | app CPU (cores) |",
                  "|---|---|---|---|---|"]
        for r in extra:
            one, cpu = r.get("one_client_s"), r.get("cpu_ms_per_answer")
            ratio = f"{r['p95_s'] / one:.2f}×" if one and r["p95_s"] else "—"
            lines.append(f"| {r['clients']} | {f'{one:.2f} s' if one else '—'} | {ratio} | "
                         f"{f'{cpu:.1f} ms' if cpu is not None else '—'} | {r.get('cpu_cores', 0):.2f} |")
    return "\n".join(lines) + "\n"


def run_once(clients: int, requests: int, seed: int, rpm: float | None, *, fixed_seconds: float | None = None,
             max_concurrent: int | None = None) -> dict:
    """One simulator at `rpm` (or answering in `fixed_seconds`), one app server, every client at once; the figures,
    with the provider's own statuses and the app's CPU time per answer."""
    args = ("--hosted-seconds", str(fixed_seconds)) if fixed_seconds else ("--hosted-rpm", str(rpm))
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp, \
            SimulatorProcess(scale=1.0, seed=seed, args=args) as sim:
        work = Path(tmp)
        env = bench_env(work / "data", sim.url("openai"), clients, max_concurrent)
        token = make_token(env, work)
        with serve_app(env, work) as url:
            one = asyncio.run(load(url, token, 1, 3)) if fixed_seconds else None  # also warms the connections
            pid = server_pid(url)
            cpu_before = cpu_seconds(pid)
            result = asyncio.run(load(url, token, clients, requests))
            cpu_after = cpu_seconds(pid)
        upstream = sim.stats()["providers"]["openai"]
    answers = result["statuses"].get("200", 0)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return {**result, "rpm": None if fixed_seconds else rpm, "fixed_seconds": fixed_seconds,
            "one_client_s": one["p50_s"] if one else None,
            "cpu_ms_per_answer": cpu * 1000 / answers if cpu is not None and answers else None,
            "cpu_cores": cpu / result["wall_s"] if cpu is not None and result["wall_s"] else 0.0,
            "provider_statuses": upstream.get("statuses", {})}


def main(argv: list[str] | None = None) -> int:
    """Start the simulator and the app, run the clients, print and write the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=4, help="assessments per client, one after the other")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rpm", type=float, nargs="+", default=[500, 10_000],
                        help="the hosted provider's rate limits to run at, requests a minute")
    parser.add_argument("--fixed-seconds", type=float, default=None,
                        help="instead of --rpm: one run with the provider answering every request in this many seconds")
    parser.add_argument("--max-concurrent", type=int, default=None,
                        help="API_MAX_CONCURRENT (default: the number of clients, at most 256)")
    args = parser.parse_args(argv)
    if args.fixed_seconds:
        results = [run_once(args.clients, args.requests, args.seed, None, fixed_seconds=args.fixed_seconds,
                            max_concurrent=args.max_concurrent)]
    else:
        results = [run_once(args.clients, args.requests, args.seed, rpm, max_concurrent=args.max_concurrent)
                   for rpm in args.rpm]
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average": os.getloadavg(),
            "date": datetime.now(UTC).isoformat(timespec="seconds")}
    table = markdown(results)
    print(table)
    print(f"load average (1, 5, 15 min) at the end: {meta['load_average']}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "api_load.md").write_text(table, encoding="utf-8")
    (OUT_DIR / "api_load.json").write_text(json.dumps({**meta, "runs": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
