"""The double-reading benchmark: a clinic day with the clinic's model as second reader, and without.

One stream of assessments (Poisson arrivals, about one every 8 s; half symptom text, half
12 MP phone photos, as `bench.load`) goes twice through the real engine against the
simulated providers of `bench.simulator`, RunPod serverless at RunPod's defaults (0 active
workers, 5 s idle timeout, 60-150 s cold boots) and a hosted OpenAI, both configured and
the app's defaults otherwise (warm-up when the page opens, fallback, hedging, JOB_WORKERS):

  off      SECOND_READER=off: today's app.
  runpod   SECOND_READER=runpod: every clinician's case is read again by the clinic's model,
           as a background job, after the first answer is recorded.

It reports, for the second run, the share of cases with the clinic model's reading within
5 minutes of the first answer (target >= 95 %), the agreement rate and `differ_risk` count
(from qa/double_reading.py, as the Performance page shows them), and the worker-seconds a
case costs: the readings' own provider time, and RunPod's bill (worker uptime, boots and
idle tails included) on versus off; for both runs, the first answer's p50/p95 (target: on
within 10 % of off).

    .venv/bin/python -m bench.double_reading            # 240 cases each way, scale 0.1 (~7 min)
    .venv/bin/python -m bench.double_reading --quick    # 60 cases, a quick look

Agreement. The simulator's answers follow the case (`--differ runpod=SHARE` of
`python -m bench.simulator`): OpenAI and RunPod read one case alike, except that RunPod reads
another class in a seeded share of cases (default 15 %). The agreement measured is that
planted share coming back through the app (the pipeline's check), not a claim about the
clinic's model.

Time, as in `bench.load`: the simulator runs `scale` times faster than real time and every
duration the app knows (budgets, timeouts, back-offs, hedges, warm-up, cool-downs, the
second reader's budget) is scaled the same way; reported seconds are real seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.load import (
    OUT,
    SYMPTOMS,
    Case,
    Outcome,
    _fmt,
    _scale_sdk_backoff,
    _scaled,
    build_engine,
    make_cases,
    make_photos,
)
from bench.load import summarize as summarize_first
from bench.simulator import SimulatorProcess
from domain.errors import DiagnosisError
from domain.readings import PENDING
from qa.double_reading import double_reading_figures
from utils.stats import percentile

READERS = ("off", "runpod")
WITHIN = 300.0          # seconds: the clinic model's reading within 5 minutes of the first answer
IDLE_TAIL = 6.0         # seconds past RunPod's 5 s idle timeout: the last worker has stopped when the bill is read


@dataclass
class Read:
    """One case's second reading, in real seconds from its first answer."""

    number: int
    status: str                 # done, unavailable, pending, or "first" (the clinic's model gave the first answer)
    concordance: str | None
    delay: float | None         # first answer to the reading (None when none came)
    elapsed: float | None       # the reading's own provider time
    cached: bool = False


def run_day(reader: str, cases: list[Case], photos: list[bytes], *, scale: float, seed: int, differ: float,
            settle_seconds: float = 900.0, progress=print) -> dict:
    """Play `cases` against a fresh simulator with SECOND_READER=`reader`; wait for the second readings.

    `settle_seconds` (real) bounds the wait for readings after the last first answer.
    """
    args = ("--differ", f"runpod={differ}")
    with SimulatorProcess(scale=scale, seed=seed, args=args) as sim, tempfile.TemporaryDirectory() as tmp:
        engine = build_engine("app", sim, scale, Path(tmp), {
            "SECOND_READER": reader, "SECOND_READER_BUDGET_SECONDS": _scaled(300, scale)})
        # The database's migrations and the job runner's start are the app's start, not the first cases' time.
        engine.store.migrate()
        if engine.second.on:
            assert engine.jobs is not None
        bookkeeping = _time_bookkeeping(engine)
        outcomes: list[Outcome] = []
        answered: dict[int, tuple[str, float]] = {}  # case number -> (assessment id, epoch seconds answered)
        kept: dict[int, float] = {}  # case number -> wall ms of its bookkeeping after the answer
        lock = threading.Lock()
        t0, epoch0 = time.monotonic(), time.time()

        def wait_until(real_seconds: float) -> None:
            delay = t0 + real_seconds * scale - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        def one(case: Case) -> None:
            wait_until(max(case.at - case.lead, 0))
            engine.warm_up.wake(case.kind)  # the clinician opens the page
            wait_until(case.at)
            shrink_started = time.monotonic()
            image = engine.prepare_image(photos[case.photo]) if case.photo is not None else None
            shrink = time.monotonic() - shrink_started
            request = engine.make_request(case.text, image, use_cache=False)
            started = time.monotonic()
            bookkeeping.ms = 0.0
            try:
                result = engine.diagnose(request, started=started)
                wall, at = time.monotonic() - started, time.time()
                first_token = None if result.first_token_ms is None else shrink + result.first_token_ms / 1000 / scale
                outcome = Outcome(case.number, case.kind, result.complete, shrink + wall / scale, first_token,
                                  result.provider, result.hedged, result.fallback,
                                  None if result.complete else "incomplete")
                if result.assessment_id:
                    with lock:
                        answered[case.number] = (result.assessment_id, at)
            except DiagnosisError as exc:
                wall = time.monotonic() - started
                outcome = Outcome(case.number, case.kind, False, shrink + wall / scale, None, None,
                                  error=type(exc).__name__)
            outcome.over_budget = max(0.0, (wall - engine.budget(case.kind)) / scale)
            with lock:
                outcomes.append(outcome)
                kept[case.number] = bookkeeping.ms

        with ThreadPoolExecutor(max_workers=min(len(cases), 256)) as pool:
            for case in cases:
                pool.submit(one, case)
        first_done = time.monotonic()
        reads: list[Read] = []
        if engine.second.on:
            # The readings still running: wait for them (each ends within its budget once its job starts).
            deadline = first_done + settle_seconds * scale
            while (any(r["status"] == PENDING for r in engine.readings.figures(epoch0))
                   and time.monotonic() < deadline):
                time.sleep(0.2)
            reads = _reads(engine, outcomes, answered, scale)
        figures = double_reading_figures(engine.readings.figures(epoch0)) if engine.readings else []
        wall = time.monotonic() - t0
        pings = engine.warm_up.pings
        engine.close()
        time.sleep(IDLE_TAIL * scale)  # the last worker idles out, so its bill is complete
        sim_stats = sim.stats()
    progress(f"  SECOND_READER={reader}: {len(outcomes)} cases in {wall:.0f} s wall "
             f"(second readings settled {time.monotonic() - first_done:.0f} s after the last first answer)")
    return {"outcomes": sorted(outcomes, key=lambda o: o.number), "bookkeeping_ms": kept,
            "reads": sorted(reads, key=lambda r: r.number),
            "figures": [_figure(f, scale) for f in figures], "simulator": sim_stats, "pings": pings,
            "wall_seconds": wall}


def _time_bookkeeping(engine) -> threading.local:
    """Time, per case thread, what the first answer waits for after the race: the history write and the second
    reading's queueing (its pending row and its job). Real milliseconds of the app's own work, which the scaled
    clock multiplies by 1/scale like every other of the app's milliseconds."""
    spent = threading.local()
    record, ask = engine.recorder.record, engine.second.ask

    def add(started: float) -> None:
        spent.ms = getattr(spent, "ms", 0.0) + (time.monotonic() - started) * 1000

    def timed(call):
        def wrapper(*args, **kwargs):
            started = time.monotonic()
            try:
                return call(*args, **kwargs)
            finally:
                add(started)
        return wrapper

    def timed_plan(plan):  # the write is a step of the case's plan, driven (and waited for) in the case's thread
        def wrapper(*args, **kwargs):
            started = time.monotonic()
            try:
                return (yield from plan(*args, **kwargs))
            finally:
                add(started)
        return wrapper

    engine.recorder.record, engine.second.ask = timed_plan(record), timed(ask)
    return spent


def _reads(engine, outcomes: list[Outcome], answered: dict[int, tuple[str, float]], scale: float) -> list[Read]:
    """Each answered case's second reading as it stands, from the engine's own record."""
    by_number = {o.number: o for o in outcomes}
    concordances = engine.readings.concordances(case for case, _ in answered.values())
    reads = []
    for number, (case, at) in answered.items():
        if by_number[number].provider == engine.second.name:
            reads.append(Read(number, "first", None, 0.0, None))
            continue
        reading = engine.second.reading_of(case)
        if reading is None:
            reads.append(Read(number, "not asked", None, None, None))
            continue
        came = reading.status == "done" and reading.at is not None
        reads.append(Read(number, reading.status, concordances.get(case),
                          max(0.0, reading.at - at) / scale if came else None,
                          None if reading.elapsed_ms is None else reading.elapsed_ms / 1000 / scale, reading.cached))
    return reads


def _figure(f, scale: float) -> dict:
    """qa/double_reading.py's figures in real seconds (the app measured them on the scaled clock)."""
    out = asdict(f)
    for name in ("delay_p50_s", "delay_p95_s", "worker_seconds"):
        out[name] = None if out[name] is None else out[name] / scale
    out["share_read"], out["agreement"], out["agreement_ci95"] = f.share_read, f.agreement, f.agreement_ci95
    out["worker_seconds_per_case"] = None if f.worker_seconds_per_case is None else f.worker_seconds_per_case / scale
    return out


def summarize_second(reads: list[Read]) -> dict:
    """The clinic model's readings of the recorded cases: how many came within 5 minutes of the first answer (the
    clinic's model giving the first answer counts as at once), and how late."""
    answered = len(reads)
    within = sum(r.delay is not None and r.delay <= WITHIN for r in reads)
    delays = [r.delay for r in reads if r.delay is not None and r.status != "first"]
    statuses: dict[str, int] = {}
    for r in reads:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    return {"answered": answered, "within_5_min": within, "share_within_5_min": within / answered if answered else None,
            "statuses": statuses, "delay_p50": percentile(delays, 50), "delay_p95": percentile(delays, 95),
            "delay_max": max(delays, default=None)}


def summarize_bookkeeping(outcomes: list[Outcome], kept: dict[int, float], scale: float) -> dict:
    """The bookkeeping's wall milliseconds, and the first answer's percentiles with them counted once, not 1/scale
    times (a failed case still counts as never answered)."""
    ms = list(kept.values())
    corrected = [o.latency - kept.get(o.number, 0.0) / 1000 * (1 / scale - 1) if o.ok else float("inf")
                 for o in outcomes]
    return {"ms_p50": percentile(ms, 50), "ms_p95": percentile(ms, 95), "ms_max": max(ms, default=None),
            "corrected_p50": percentile(corrected, 50), "corrected_p95": percentile(corrected, 95)}


def compare(results: dict[str, dict], cases: int) -> dict:
    """The headline figures: the targets, and what the second reader costs in RunPod worker time."""
    off, on = results.get("off"), results.get("runpod")
    out: dict = {}
    if off and on:
        for q in ("p50", "p95"):
            out[f"first_{q}_ratio"] = _divide(on["first"]["all"][q], off["first"]["all"][q])
            out[f"corrected_{q}_ratio"] = _divide(on["bookkeeping"][f"corrected_{q}"],
                                                  off["bookkeeping"][f"corrected_{q}"])
        billed = {k: r["simulator"]["providers"]["runpod"]["worker_seconds"] for k, r in results.items()}
        out["runpod_billed"] = billed
        out["billed_extra_per_case"] = (billed["runpod"] - billed["off"]) / cases
    if on:
        out["second"] = on["second"]
        fig = next((f for f in on["figures"] if f["provider"] == "runpod"), None)
        out["figures"] = fig
    return out


def markdown(results: dict[str, dict], headline: dict, cases: int) -> str:
    """The tables RESULTS.md shows."""
    lines = ["| SECOND_READER | kind | cases | success | p50 s | p95 s | p99 s | max s | answered by | "
             "hedged / fallback |", "|---|---|---|---|---|---|---|---|---|---|"]
    for reader, result in results.items():
        for kind in ("text", "image", "all"):
            s = result["first"].get(kind)
            if not s:
                continue
            providers = ", ".join(f"{k} {v}" for k, v in sorted(s["providers"].items()))
            lines.append(f"| {reader} | {kind} | {s['cases']} | {s['success']:.1%} | {_fmt(s['p50'])} | "
                         f"{_fmt(s['p95'])} | {_fmt(s['p99'])} | {_fmt(s['max'])} | {providers} | "
                         f"{s['hedged']} / {s['fallback']} |")
    for q in ("p50", "p95"):
        if f"first_{q}_ratio" in headline:
            raw, corrected = _ratio(headline[f"first_{q}_ratio"]), _ratio(headline[f"corrected_{q}_ratio"])
            lines.append(f"\nFirst answer {q}, on ÷ off: {raw} (target ≤ 1.10); with the app's bookkeeping after "
                         f"the race counted once: {corrected}.")
    for reader, result in results.items():
        b = result["bookkeeping"]
        lines.append(f"\nSECOND_READER={reader}: bookkeeping after the race (history write"
                     f"{', the second reading queued' if reader != 'off' else ''}) p50 {_fmt(b['ms_p50'])} ms, p95 "
                     f"{_fmt(b['ms_p95'])} ms, max {_fmt(b['ms_max'])} ms of wall time; counted once, first answer "
                     f"p50 {_fmt(b['corrected_p50'])} s, p95 {_fmt(b['corrected_p95'])} s.")
    second, fig = headline.get("second"), headline.get("figures")
    if second:
        share = second["share_within_5_min"]
        lines.append(f"\nClinic model's reading within 5 min of the first answer: {second['within_5_min']}/"
                     f"{second['answered']} = {share:.1%} (target ≥ 95 %); readings by status {second['statuses']}; "
                     f"delay p50 {_fmt(second['delay_p50'])} s, p95 {_fmt(second['delay_p95'])} s, "
                     f"max {_fmt(second['delay_max'])} s.")
    if fig:
        ci = fig["agreement_ci95"] or (0, 0)
        lines.append(f"\nqa/double_reading.py: asked {fig['asked']}, read {fig['read']}, unavailable "
                     f"{fig['unavailable']}, pending {fig['pending']}; agree {fig['agree']}, differ {fig['differ']}, "
                     f"differ_risk {fig['differ_risk']}; agreement {fig['agreement']:.1%} (95 % CI "
                     f"{ci[0]:.1%}-{ci[1]:.1%}); delay p50 {_fmt(fig['delay_p50_s'])} s, p95 "
                     f"{_fmt(fig['delay_p95_s'])} s; reading time {fig['worker_seconds']:.0f} s in all, "
                     f"{_fmt(fig['worker_seconds_per_case'])} s per case read.")
    if "runpod_billed" in headline:
        rows = ["\n| SECOND_READER | RunPod requests | workers booted | boot s | billed worker-s | per case | "
                "warm-up pings |", "|---|---|---|---|---|---|---|"]
        for reader, result in results.items():
            rp = result["simulator"]["providers"]["runpod"]
            rows.append(f"| {reader} | {rp['requests']} | {rp['workers_booted']} | {rp['boot_seconds']:.0f} | "
                        f"{rp['worker_seconds']:.0f} | {rp['worker_seconds'] / cases:.1f} | {result['pings']} |")
        lines += rows
        lines.append(f"\nRunPod's bill for the second reading: {headline['billed_extra_per_case']:.1f} worker-seconds "
                     f"per case (on − off, ÷ {cases} cases).")
    return "\n".join(lines)


def _divide(a: float | None, b: float | None) -> float | None:
    """a ÷ b, or None when either is unknown or infinite (a percentile that fell on a failed case)."""
    if a is None or b is None or not b or float("inf") in (a, b):
        return None
    return a / b


def _ratio(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.3f}"


def run(count: int, *, scale: float, seed: int, differ: float, only: list[str] | None = None,
        settle_seconds: float = 900.0, photos: list[bytes] | None = None, progress=print) -> tuple[dict, dict]:
    """Both days (or `only` some) over one arrival stream; returns (results by reader, headline figures).

    `photos` (default: four 12 MP phone photos) are the photo cases' pictures, by turns.
    """
    _scale_sdk_backoff(scale)
    photos = photos or make_photos()
    cases = [replace(c, photo=c.photo % len(photos)) if c.photo is not None else c for c in make_cases(count, seed)]
    # A throw-away morning first: the process's first calls pay for imports and lazy set-up (seconds on a loaded
    # machine, i.e. minutes on the scaled clock), which would fall on whichever day ran first.
    run_day("off", [Case(0, 1.0, "text", SYMPTOMS[0], None, 0.5), Case(1, 2.0, "image", SYMPTOMS[1], 0, 0.5)],
            photos, scale=scale, seed=seed + 1, differ=differ, progress=lambda _: None)
    results = {}
    for reader in only or READERS:
        day = run_day(reader, cases, photos, scale=scale, seed=seed, differ=differ, settle_seconds=settle_seconds,
                      progress=progress)
        results[reader] = {
            "first": summarize_first(day["outcomes"]),
            "bookkeeping": summarize_bookkeeping(day["outcomes"], day["bookkeeping_ms"], scale),
            "second": summarize_second(day["reads"]) if reader != "off" else None,
            "figures": day["figures"], "simulator": day["simulator"], "pings": day["pings"],
            "wall_seconds": day["wall_seconds"],
            "outcomes": [asdict(o) for o in day["outcomes"]], "reads": [asdict(r) for r in day["reads"]]}
    return results, compare(results, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=240, help="assessments per run")
    parser.add_argument("--scale", type=float, default=0.1, help="wall seconds per simulated second")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--differ", type=float, default=0.15, help="share of cases RunPod reads another class")
    parser.add_argument("--only", choices=READERS, action="append", help="run only these SECOND_READER values")
    parser.add_argument("--quick", action="store_true", help="60 cases per run")
    args = parser.parse_args(argv)
    count = 60 if args.quick else args.cases
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{count} cases per run, scale {args.scale}; uptime: {load}")
    results, headline = run(count, scale=args.scale, seed=args.seed, differ=args.differ, only=args.only)
    table = markdown(results, headline, count)
    print(table)
    OUT.mkdir(exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "cpus": os.cpu_count(), "uptime_before": load,
            "uptime_after": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
            "cases": count, "scale": args.scale, "seed": args.seed, "differ": args.differ}
    (OUT / "double_reading.json").write_text(json.dumps({"meta": meta, "headline": headline, "results": results},
                                                        indent=1, default=str))
    (OUT / "double_reading.md").write_text(f"{meta}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
