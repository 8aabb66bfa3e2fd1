"""Micro-benchmarks: what the app itself costs per assessment, on this machine.

The load benchmark (`bench.load`) asks whether clinicians get answers in time from
real-world providers; this one asks the narrower question whether the app's own code
is ever the slow part. Each benchmark runs warm-up repetitions first (imports, lazy
clients, connection pools, Pillow's codecs), then N timed repetitions, and reports the
median, p95 and max against a target:

  1. shrink a 12 MP phone JPEG (4032×3024, grainy, EXIF orientation 6 + GPS) with
     `utils.images.shrink_image` at the defaults (512 px, quality 70)    median ≤ 60 ms
  2. the same for a 12 MP HEIC (pillow-heif)                            median ≤ 900 ms
  3. a cache hit through the public `startup.diagnose`, for text and for an
     already shrunk photo                                               median ≤ 10 ms
  4. the app's overhead per assessment: `diagnose(..., use_cache=False)` against a
     server that answers at once (streamed), minus the same request sent with a plain
     `httpx.Client`, for text and for a photo                          median ≤ 20 ms
  5. 20 concurrent assessments (20 threads) against a provider that takes 1.0 s
     take about as long as one                                  wall-time ratio ≤ 1.5

    .venv/bin/python -m bench.micro            # the full run, about a minute
    .venv/bin/python -m bench.micro --quick    # fewer repetitions, for a quick look

The table is printed and written, with every raw sample, to bench/out/micro.md and
bench/out/micro.json. Benchmarks never assert: a missed target is reported, not raised.

The provider is `testkit.fake_llm.FakeLLM`, a real HTTP server on 127.0.0.1 speaking
chat completions, running in this process (as it does in the tests). It competes with
the app for the GIL and for this machine's cores, in both halves of benchmark 4 alike;
a remote provider would not, so the overheads here are if anything pessimistic.

TCP_NODELAY. FakeLLM is built on `http.server`, which leaves Nagle's algorithm on, and
writes each streamed event as its own small segment; a plain `httpx.Client` leaves it on
too. Together with delayed ACKs that stalls some requests by 40 ms on loopback, and
which ones changes from run to run (measured here: the same direct request took 2 ms
in one run and 43 ms in the next, the app's 13 ms or 56 ms), which would swamp what
benchmark 4 measures. Production servers set TCP_NODELAY (nginx and uvicorn, which vLLM
uses, by default), and so do the app's asyncio client and FakeLLM; the direct client here
is given the same option.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import PIL
from PIL import features

import startup
from bench.environment import RUNPOD_KEY, engine_pointed_at
from bench.measuring import Row, timed
from bench.photos import heic_12mp, typical_jpeg
from testkit.answers import VALID
from testkit.corpus import phone_jpeg
from testkit.fake_llm import FakeLLM, Reply
from utils.images import HEIF_SUPPORTED, ShrunkImage, shrink_image

OUT_DIR = Path(__file__).resolve().parent / "out"


_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


# -- the benchmarks ----------------------------------------------------------------------------

@dataclass
class Plan:
    """Repetitions per benchmark; `--quick` uses the small one."""

    shrink_jpeg: int = 40
    shrink_heic: int = 8
    cache_hit: int = 300
    overhead: int = 60
    rounds: int = 5
    warmup: int = 3

    @classmethod
    def quick(cls) -> Plan:
        return cls(shrink_jpeg=10, shrink_heic=2, cache_hit=50, overhead=15, rounds=2, warmup=1)


@dataclass
class Report:
    """The rows of the table, the raw numbers that are not rows, and anything worth a remark."""

    rows: list[Row] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def bench_shrinking(plan: Plan, report: Report, log: Callable[[str], None]) -> None:
    """Benchmarks 1 and 2: the photo is shrunk on the clinician's click, before any provider is asked."""
    jpeg = phone_jpeg()
    shrunk = shrink_image(jpeg)
    report.raw["jpeg"] = {"bytes": len(jpeg), "shrunk": shrunk.describe()}
    report.rows.append(Row(f"1. shrink 12 MP JPEG ({len(jpeg) / 1e6:.1f} MB, orientation 6 + GPS)", "ms",
                           timed(lambda: shrink_image(jpeg), warmup=plan.warmup, reps=plan.shrink_jpeg), 60))
    light = typical_jpeg()
    report.rows.append(Row(f"1b. shrink 12 MP JPEG, typical size ({len(light) / 1e6:.1f} MB)", "ms",
                           timed(lambda: shrink_image(light), warmup=plan.warmup, reps=plan.shrink_jpeg),
                           note="for reference: the same photo with less grain"))
    if not HEIF_SUPPORTED:
        report.notes.append("pillow-heif is not installed: benchmark 2 (HEIC) was skipped.")
        return
    heic = heic_12mp(log)
    report.raw["heic"] = {"bytes": len(heic), "shrunk": shrink_image(heic).describe()}
    report.rows.append(Row(f"2. shrink 12 MP HEIC ({len(heic) / 1e6:.1f} MB, orientation 6 + GPS)", "ms",
                           timed(lambda: shrink_image(heic), warmup=1, reps=plan.shrink_heic), 900))


def bench_cache_hits(plan: Plan, report: Report, fake: FakeLLM, image: ShrunkImage) -> None:
    """Benchmark 3: a repeated question (a re-render, a colleague's second look) must cost nothing noticeable."""
    text = "5 mm pearly papule beside the nose with fine telangiectasia"
    before = len(fake.chat_requests)
    misses = [startup.diagnose(text=text), startup.diagnose(image=image)]
    hits = {"text=…": lambda: startup.diagnose(text=text),
            "image=<already shrunk>": lambda: startup.diagnose(image=image)}
    for kind, call in hits.items():
        samples = timed(call, warmup=plan.warmup * 5, reps=plan.cache_hit)
        report.rows.append(Row(f"3. cache hit, diagnose({kind})", "ms", samples, 10))
    served = len(fake.chat_requests) - before
    if any(m.cached for m in misses) or served != len(misses) or not all(call().cached for call in hits.values()):
        report.notes.append(f"Benchmark 3: expected {len(misses)} provider requests and cache hits after them, "
                            f"the server saw {served}: the hits above may not all be hits.")


def _direct_call(client: httpx.Client, url: str, body: bytes) -> None:
    """The same chat-completions request without the app: one streaming POST, read to the end."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {RUNPOD_KEY}",
               "Accept": "application/json"}
    with client.stream("POST", url, content=body, headers=headers) as response:
        response.raise_for_status()
        for _ in response.iter_bytes():
            pass


def _paired(call: Callable[[], object], direct: Callable[[], object], *, warmup: int,
            reps: int) -> tuple[list[float], list[float]]:
    """Milliseconds of `call` and of `direct`, alternated call by call.

    Interleaving makes drift (CPU frequency, the other processes on two cores) hit both
    alike, so each pair's difference is a fair overhead sample.
    """
    app, bare = [], []
    for i in range(warmup + reps):
        pair = []
        for fn in (call, direct):
            start = time.perf_counter()
            fn()
            pair.append((time.perf_counter() - start) * 1000)
        if i >= warmup:
            app.append(pair[0])
            bare.append(pair[1])
    return app, bare


def bench_overhead(plan: Plan, report: Report, fake: FakeLLM, image: ShrunkImage) -> None:
    """Benchmark 4: time the app adds around the provider (building the prompt, langchain and the
    OpenAI SDK, the background loop, parsing, the cache write), as app time minus the time of
    the same request, byte for byte, sent with a plain `httpx.Client` and read to the end.

    FakeLLM streams its answer 8 characters an event (44 events). A model streaming token by
    token sends several times as many, and the app's cost grows with every event, so a third,
    informational measurement repeats the text case at 2 characters an event (176 events).
    """
    url = fake.url + "/chat/completions"
    cases = {"text": (lambda: startup.diagnose(text="scaly red plaque on the scalp, 3 cm", use_cache=False), 8),
             "image": (lambda: startup.diagnose(image=image, use_cache=False), 8),
             "text, 2 characters an event": (
                 lambda: startup.diagnose(text="scaly red plaque on the scalp, 3 cm", use_cache=False), 2)}
    per_event: dict[int, float] = {}
    with httpx.Client(timeout=30, transport=httpx.HTTPTransport(socket_options=_NODELAY)) as client:
        for kind, (call, chunk_chars) in cases.items():
            fake.default = Reply(VALID, chunk_chars=chunk_chars)
            call()
            body = fake.chat_requests[-1].raw
            app, bare = _paired(call, lambda body=body: _direct_call(client, url, body), warmup=plan.warmup,
                                reps=plan.overhead)
            overhead = [a - d for a, d in zip(app, bare, strict=True)]
            events = -(-len(VALID) // chunk_chars)
            if chunk_chars == 8:
                report.rows.append(Row(f"4. app overhead per assessment, {kind} (app − direct)", "ms", overhead, 20,
                                       note=f"request body {len(body) / 1000:.1f} KB, answer in {events} events"))
                report.rows.append(Row(f"4. … {kind}: diagnose(use_cache=False)", "ms", app))
                report.rows.append(Row(f"4. … {kind}: plain httpx streaming POST", "ms", bare))
            else:
                report.rows.append(Row(f"4b. app overhead, {kind} ({events} events)", "ms", overhead))
            if kind.startswith("text"):
                per_event[events] = statistics.median(overhead)
            report.raw[f"overhead {kind}"] = {"body_bytes": len(body), "events": events, "app_ms": app,
                                              "direct_ms": bare}
    fake.default = Reply(VALID)
    (few, fixed), (many, more) = sorted(per_event.items())
    cost = (more - fixed) / (many - few)
    report.raw["overhead_ms_per_streamed_event"] = cost
    report.notes.append(f"4b. The app's overhead grows by about {cost:.2f} ms per streamed event (median "
                        f"{fixed:.1f} ms at {few} events, {more:.1f} ms at {many}); a {few}-event answer "
                        f"costs about {fixed - few * cost:.1f} ms besides.")


def _rounds(fake: FakeLLM, reply: Reply, rounds: int) -> tuple[list[float], list[float], list[float]]:
    """Seconds of one assessment alone and of 20 at once, per round, and each call's seconds in the batches.

    Round 0 is a warm-up (the pool's threads, 20 connections) and is not returned. Texts
    are distinct so nothing comes from the cache.
    """
    fake.default = reply
    counter = itertools.count()

    def one() -> float:
        start = time.perf_counter()
        startup.diagnose(text=f"irregular pigmented macule, case {next(counter)}", use_cache=False)
        return time.perf_counter() - start

    single, batch, per_call = [], [], []
    with ThreadPoolExecutor(max_workers=20, thread_name_prefix="bench-session") as pool:
        for r in range(1 + rounds):
            alone = one()
            start = time.perf_counter()
            latencies = list(pool.map(lambda _: one(), range(20)))
            together = time.perf_counter() - start
            if r:
                single.append(alone)
                batch.append(together)
                per_call.extend(latencies)
    fake.default = Reply(VALID)
    return single, batch, per_call


def bench_concurrency(plan: Plan, report: Report, fake: FakeLLM) -> None:
    """Benchmark 5: assessments from many sessions must wait for the provider together, not in turn.

    Each round times one assessment alone, then 20 at once from 20 threads; the provider
    waits 1.0 s before it answers. Every provider call runs on the engine's one background
    event loop, so whatever CPU an assessment needs there is spent one assessment after
    another: a second, informational run streams the answer in 176 events instead of 44,
    closer to a model streaming token by token, to show how that adds up.
    """
    single, batch, per_call = _rounds(fake, Reply(VALID, delay=1.0), plan.rounds)
    report.rows.append(Row("5. one diagnose, provider takes 1.0 s", "s", single))
    report.rows.append(Row("5. 20 concurrent diagnose (20 threads), wall", "s", batch))
    report.rows.append(Row("5. 20 concurrent ÷ one (wall-time ratio)", "×",
                           [b / a for a, b in zip(single, batch, strict=True)], 1.5,
                           note=f"each call in the batches: median {statistics.median(per_call):.2f} s, "
                                f"max {max(per_call):.2f} s"))
    report.raw["concurrency"] = {"single_s": single, "batch_s": batch, "per_call_s": per_call}
    single, batch, per_call = _rounds(fake, Reply(VALID, delay=1.0, chunk_chars=2), plan.rounds)
    report.rows.append(Row("5b. 20 concurrent ÷ one, answer in 176 events", "×",
                           [b / a for a, b in zip(single, batch, strict=True)],
                           note=f"one alone: median {statistics.median(single):.2f} s; 20 at once: median "
                                f"{statistics.median(batch):.2f} s"))
    report.raw["concurrency_176_events"] = {"single_s": single, "batch_s": batch, "per_call_s": per_call}


def run(plan: Plan, log: Callable[[str], None] = print) -> Report:
    """Every benchmark in order; returns the report.

    Nothing is asserted, and a benchmark that breaks (a provider error, a missing codec)
    becomes a note in the report while the others still run.
    """
    report = Report()

    def attempt(label: str, bench: Callable[[], None]) -> None:
        log(f"{label} ...")
        try:
            bench()
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the other benchmarks still count
            report.notes.append(f"{label} did not complete: {type(exc).__name__}: {exc}")

    attempt("1-2. shrinking photos", lambda: bench_shrinking(plan, report, log))
    with FakeLLM() as fake, engine_pointed_at(fake.url):
        image = startup.prepare_image(phone_jpeg())
        attempt("3. cache hits", lambda: bench_cache_hits(plan, report, fake, image))
        attempt("4. app overhead", lambda: bench_overhead(plan, report, fake, image))
        attempt("5. concurrency", lambda: bench_concurrency(plan, report, fake))
    return report


# -- output ------------------------------------------------------------------------------------

def machine() -> dict:
    """What the numbers depend on: the CPU, Python, and the image libraries doing the work."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "platform": platform.platform(),
            "cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(), "pillow": PIL.__version__,
            "libjpeg_turbo": features.check_feature("libjpeg_turbo")}
    with contextlib.suppress(ImportError):
        import pillow_heif
        info["pillow_heif"] = pillow_heif.__version__
        info["libheif"] = pillow_heif.libheif_info().get("libheif")
    return info


def markdown(report: Report, meta: dict) -> str:
    """The table, as printed and as written to bench/out/micro.md."""
    lines = [f"Micro-benchmarks, {meta['date']}: {meta['cpu']} ({meta['cpus']} cores), Python {meta['python']}, "
             f"Pillow {meta['pillow']}, pillow-heif {meta.get('pillow_heif', '—')}; "
             f"{'quick' if meta['quick'] else 'full'} run, {meta['seconds']:.0f} s.",
             "", "| benchmark | target | median | p95 | max | n | result |", "|---|---|---|---|---|---|---|"]
    for row in report.rows:
        result = {True: "pass", False: "**FAIL**", None: "info"}[row.passed]
        lines.append(f"| {row.name} | {row.target} | {row.fmt(row.median)} | {row.fmt(row.p95)} | "
                     f"{row.fmt(row.max)} | {len(row.samples)} | {result} |")
    notes = [f"{row.name}: {row.note}" for row in report.rows if row.note]
    notes += report.notes
    if notes:
        lines += [""] + [f"- {note}" for note in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a quick check")
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.monotonic()
    report = run(plan, log)
    meta = {**machine(), "quick": args.quick, "seconds": time.monotonic() - started, "plan": plan.__dict__,
            "gil_switch_interval_s": sys.getswitchinterval()}
    table = markdown(report, meta)
    print(table)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "micro.md").write_text(table, encoding="utf-8")
    (OUT_DIR / "micro.json").write_text(json.dumps(
        {"meta": meta, "table": table, "rows": [row.to_dict() for row in report.rows], "raw": report.raw,
         "notes": report.notes}, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
