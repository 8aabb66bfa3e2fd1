"""The load benchmark: a day at the clinic, four ways.

A stream of assessments (Poisson arrivals, about one every 8 s; half symptom text,
half 12 MP phone photos) goes through the real engine (`Engine.diagnose`, the code
path of the page and the command line) against the simulated providers of
`bench.simulator`, under four strategies:

  a. original  the original backend: REQUEST_TIMEOUT 30, MAX_TOKENS 1000, its own retry
               loop (3 retries) around the SDK's (2), photos at 1024 px, RunPod only,
               no streaming, no time budget.
  b. guide     the performance guide's settings: timeouts 15 s (text) / 20 s (image),
               MAX_TOKENS 400, one retry around the SDK's, photos at 512 px, RunPod only.
  c. litellm   LiteLLM's Router: RunPod first, OpenAI as fallback, 2 retries, 30 s timeout.
  d. app       this app's defaults with both providers configured: one budget (15 s / 30 s),
               fallback, hedging, provider health, warm-up when the page opens.

    .venv/bin/python -m bench.load                 # 300 cases per strategy, scale 0.05 (~12 min)
    .venv/bin/python -m bench.load --quick         # 60 cases, a quick look
    .venv/bin/python -m bench.load --only app --cases 400

Time. The simulator runs `scale` times faster than real time (at 0.05, a 90 s cold start
takes 4.5 s), and every duration the clients know (timeouts, budgets, back-offs, hedge
delays, warm-up and probe intervals) is scaled the same way. Reported latencies are
wall time divided by `scale`, so they read in real seconds; the photo is shrunk outside
the scaled clock and its real time is added as it is, since CPU work does not speed up.
The app's own few milliseconds per call are still divided by `scale` (20x at 0.05),
which makes every strategy look slightly slower than it is, the app's most of all.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM must not fetch its price list

from PIL import Image  # noqa: E402

import startup as wiring  # noqa: E402
from bench.simulator import Simulator, SimulatorProcess  # noqa: E402
from domain.errors import DiagnosisError, ProviderUnavailable  # noqa: E402
from domain.result import Usage  # noqa: E402
from engine.core import Engine  # noqa: E402
from providers.base import Attempt, Provider  # noqa: E402
from providers.registry import RunPodProvider  # noqa: E402
from utils.settings import load_settings  # noqa: E402
from utils.stats import percentile  # noqa: E402

OUT = Path(__file__).parent / "out"
TARGETS = {"text": 15.0, "image": 30.0}  # the performance guide's targets, seconds
STRATEGIES = ("original", "guide", "litellm", "app")

SYMPTOMS = [
    "코 옆 5mm 진주빛 구진, 6개월간 서서히 커짐, 가끔 출혈",
    "등에 있는 비대칭 흑갈색 반점, 최근 색이 변함",
    "손등의 거친 각질성 구진, 햇빛 노출 부위",
    "얼굴의 노란빛 작은 구진 여러 개, 가운데 함몰",
    "scaly red plaque on the scalp for a year, itchy",
    "rapidly growing red nodule on the finger that bleeds easily",
]


@dataclass(frozen=True)
class Case:
    """One assessment: when it is submitted (real seconds), what it holds, when its page opened."""

    number: int
    at: float
    kind: str
    text: str
    photo: int | None  # index into the photo set
    lead: float        # seconds between opening the page (warm-up) and pressing the button


@dataclass
class Outcome:
    """What one case got, in real seconds."""

    number: int
    kind: str
    ok: bool
    latency: float
    first_token: float | None
    provider: str | None
    hedged: bool = False
    fallback: bool = False
    error: str | None = None
    over_budget: float = 0.0  # seconds past the budget (app strategy only)


def make_cases(count: int, seed: int, mean_gap: float = 8.0) -> list[Case]:
    """Poisson arrivals, half text and half photos, each with the time its page was opened before."""
    rng = random.Random(seed)
    cases, at = [], 5.0
    for n in range(count):
        at += rng.expovariate(1 / mean_gap)
        kind = "image" if rng.random() < 0.5 else "text"
        cases.append(Case(n, at, kind, f"{rng.choice(SYMPTOMS)} (case {n})",
                          rng.randrange(4) if kind == "image" else None, lead=rng.uniform(20, 60)))
    return cases


def make_photos(count: int = 4, seed: int = 7) -> list[bytes]:
    """12 MP phone-like JPEGs (grain so they compress like photos, ~4-6 MB each)."""
    rng = random.Random(seed)
    photos = []
    for i in range(count):
        base = Image.new("RGB", (4032, 3024), (150 + 20 * i, 100, 90))
        noise = Image.effect_noise((4032, 3024), 40 + rng.randrange(20)).convert("RGB")
        img = Image.blend(base, noise, 0.35)
        out = io.BytesIO()
        img.save(out, "JPEG", quality=92)
        photos.append(out.getvalue())
    return photos


# -- strategies -------------------------------------------------------------------------------


class OriginalRunPod(RunPodProvider):
    """RunPod as the original backend called it: the SDK's own two retries inside its retry loop."""

    sdk_max_retries = 2


class LiteLLMRouterProvider(Provider):
    """LiteLLM's Router (RunPod, then OpenAI as fallback) behind the engine's provider interface."""

    name, title = "litellm", "LiteLLM Router"
    key_var = url_var = None
    model_var = "LITELLM"
    MODELS = {"runpod": "clinic-derm-v1", "openai": "gpt-4o-mini"}

    def __init__(self, settings, sim: SimulatorProcess | Simulator, scale: float) -> None:
        super().__init__(settings, api_key="", base_url="", model="runpod→openai")
        from litellm import Router

        self.answered_by: Counter = Counter()
        timeout = 30 * scale
        self.router = Router(
            model_list=[
                {"model_name": "runpod", "litellm_params": {
                    "model": "openai/clinic-derm-v1", "api_base": sim.url("runpod"), "api_key": "sim",
                    "timeout": timeout, "stream_timeout": timeout}},
                {"model_name": "openai", "litellm_params": {
                    "model": "openai/gpt-4o-mini", "api_base": sim.url("openai"), "api_key": "sim",
                    "timeout": timeout, "stream_timeout": timeout}},
            ],
            fallbacks=[{"runpod": ["openai"]}], num_retries=2, timeout=timeout)

    def missing(self) -> list[str]:
        return []

    async def complete(self, messages, *, stream, on_text=None) -> Attempt:
        parts: list[str] = []
        usage = Usage()
        model = None
        try:
            response = await self.router.acompletion(model="runpod", messages=messages, stream=True,
                                                     max_tokens=self.settings.max_tokens,
                                                     stream_options={"include_usage": True})
            async for chunk in response:
                if chunk.choices and chunk.choices[0].delta and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
                    if on_text:
                        on_text("".join(parts))
                if getattr(chunk, "usage", None):
                    usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                model = getattr(chunk, "model", None) or model
        except Exception as exc:  # noqa: BLE001 - whatever LiteLLM raises is a failed case
            raise ProviderUnavailable(f"LiteLLM: {type(exc).__name__}", provider=self.name) from None
        # Which deployment answered: the benchmark reports it as the provider.
        self.answered_by[next((n for n, m in self.MODELS.items() if m in (model or "")), model or "?")] += 1
        return Attempt("".join(parts), usage)


def _scaled(seconds: float, scale: float) -> str:
    return f"{seconds * scale:.6f}"


def build_engine(strategy: str, sim: SimulatorProcess | Simulator, scale: float, data_dir: Path,
                 extra: dict[str, str] | None = None) -> Engine:
    """An engine configured as `strategy` would be, against the simulator; `extra` settings go on top."""
    forever = _scaled(100_000, scale)
    env = {
        "RUNPOD_API_KEY": "sim", "RUNPOD_BASE_URL": sim.url("runpod"), "RUNPOD_MODEL_NAME": "clinic-derm-v1",
        "DATA_DIR": str(data_dir), "CACHE_ENABLED": "false", "WARM_UP": "false",
        "PROVIDER_FALLBACKS": "none", "HEDGE_AFTER_SECONDS": "off",
    }
    if strategy == "original":
        env.update(REQUEST_TIMEOUT=_scaled(30, scale), MAX_TOKENS="1000", TEMPERATURE="0.3", LLM_MAX_RETRIES="3",
                   LLM_RETRY_BASE_DELAY=_scaled(1.0, scale), LLM_STREAM="false", IMAGE_MAX_SIDE="1024",
                   IMAGE_JPEG_QUALITY="85", TEXT_BUDGET_SECONDS=forever, IMAGE_BUDGET_SECONDS=forever)
    elif strategy == "guide":
        env.update(REQUEST_TIMEOUT=_scaled(15, scale), MAX_TOKENS="400", TEMPERATURE="0.1", LLM_MAX_RETRIES="1",
                   LLM_RETRY_BASE_DELAY=_scaled(0.2, scale), LLM_STREAM="false",
                   TEXT_BUDGET_SECONDS=forever, IMAGE_BUDGET_SECONDS=forever)
    elif strategy == "litellm":
        env.update(LLM_MAX_RETRIES="0", TEXT_BUDGET_SECONDS=forever, IMAGE_BUDGET_SECONDS=forever,
                   SKIN_DIAGNOSIS_PROVIDER="litellm", SKIN_DIAGNOSIS_IMAGE_PROVIDER="litellm")
    elif strategy == "app":
        env = {k: v for k, v in env.items() if k not in ("WARM_UP", "PROVIDER_FALLBACKS", "HEDGE_AFTER_SECONDS")}
        env.update(OPENAI_API_KEY="sim", OPENAI_BASE_URL=sim.url("openai"), OPENAI_MODEL="gpt-4o-mini")
        # Every duration the app knows, at its default, on the simulator's clock.
        for name, default in (("REQUEST_TIMEOUT", 30), ("TEXT_BUDGET_SECONDS", 15), ("IMAGE_BUDGET_SECONDS", 30),
                              ("LLM_RETRY_BASE_DELAY", 0.5), ("HEALTH_COOLDOWN_SECONDS", 60),
                              ("COLD_START_SECONDS", 10), ("WARM_UP_SECONDS", 20), ("SERVERLESS_IDLE_SECONDS", 5),
                              ("HEDGE_MIN_SECONDS", 0.75), ("HEDGE_MAX_SECONDS", 4)):
            env[name] = _scaled(default, scale)
    env.update(extra or {})
    settings = load_settings(env=env)
    engine = wiring.build_engine(settings)
    if strategy == "original":
        engine.providers["runpod"] = OriginalRunPod.from_settings(settings)
    elif strategy == "guide":
        # The guide's RunPod provider: timeout=20, max_tokens=400, temperature 0.05; the SDK's retries kept.
        engine.providers["runpod"] = OriginalRunPod.from_settings(
            load_settings(env={**env, "REQUEST_TIMEOUT": _scaled(20, scale), "TEMPERATURE": "0.05"}))
    elif strategy == "litellm":
        engine.providers = {"litellm": LiteLLMRouterProvider(settings, sim, scale)}
        engine.health["litellm"] = engine.health["runpod"]
    return engine


def _scale_sdk_backoff(scale: float) -> None:
    """Put the SDKs' own back-off sleeps on the simulator's clock, as every other duration is.

    A Retry-After from the simulator is already in wall time and is left alone.
    """
    import openai._base_client as base

    original = base.BaseClient._calculate_retry_timeout
    if getattr(original, "_bench_scaled", False):
        return

    def scaled(self, remaining_retries, options, response_headers=None):
        seconds = original(self, remaining_retries, options, response_headers)
        told = self._parse_retry_after_header(response_headers)
        return seconds if told is not None and told > 0 else seconds * scale

    scaled._bench_scaled = True
    base.BaseClient._calculate_retry_timeout = scaled

    try:
        import litellm
    except ImportError:  # only the litellm strategy needs it (bench/requirements.txt)
        return

    litellm_original = litellm.calculate_retry_after

    def litellm_scaled(remaining_retries, max_retries, response_headers=None, min_timeout=0):
        seconds = litellm_original(remaining_retries, max_retries, response_headers, min_timeout)
        told = response_headers is not None and response_headers.get("retry-after") is not None
        return seconds if told else seconds * scale

    litellm.calculate_retry_after = litellm_scaled
    litellm._calculate_retry_after = litellm_scaled


# -- running ----------------------------------------------------------------------------------


def run_strategy(strategy: str, cases: list[Case], photos: list[bytes], *, scale: float, seed: int,
                 progress: Callable[[str], None] = print) -> tuple[list[Outcome], dict]:
    """Play `cases` against a fresh simulator (every worker cold) under `strategy`."""
    with SimulatorProcess(scale=scale, seed=seed) as sim, tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(strategy, sim, scale, Path(tmp))
        outcomes: list[Outcome] = []
        lock = threading.Lock()
        t0 = time.monotonic()

        def wait_until(real_seconds: float) -> None:
            delay = t0 + real_seconds * scale - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        def one(case: Case) -> None:
            if strategy == "app":
                wait_until(max(case.at - case.lead, 0))
                engine.warm_up.wake(case.kind)  # the clinician opens the page
            wait_until(case.at)
            shrink_started = time.monotonic()
            image = engine.prepare_image(photos[case.photo]) if case.photo is not None else None
            shrink = time.monotonic() - shrink_started
            request = engine.make_request(case.text, image, use_cache=False)
            started = time.monotonic()
            budget = engine.budget(case.kind)
            try:
                result = engine.diagnose(request, started=started)
                wall = time.monotonic() - started
                first_token = None if result.first_token_ms is None else shrink + result.first_token_ms / 1000 / scale
                outcome = Outcome(case.number, case.kind, result.complete, shrink + wall / scale, first_token,
                                  result.provider, result.hedged, result.fallback,
                                  None if result.complete else "incomplete")
            except DiagnosisError as exc:
                wall = time.monotonic() - started
                outcome = Outcome(case.number, case.kind, False, shrink + wall / scale, None, None,
                                  error=type(exc).__name__)
            if strategy == "app":
                outcome.over_budget = max(0.0, (wall - budget) / scale)
            with lock:
                outcomes.append(outcome)

        with ThreadPoolExecutor(max_workers=min(len(cases), 256)) as pool:
            for case in cases:
                pool.submit(one, case)
        wall = time.monotonic() - t0
        router = engine.providers.get("litellm")
        # LiteLLM picks the deployment itself: report which one answered.
        extra_providers = dict(router.answered_by) if router is not None else None
        engine.close()
        sim_stats = sim.stats()
    progress(f"  {strategy}: {len(outcomes)} cases in {wall:.0f} s wall")
    return sorted(outcomes, key=lambda o: o.number), {"wall_seconds": wall, "simulator": sim_stats,
                                                       "pings": engine.warm_up.pings,
                                                       "litellm_answered_by": extra_providers}


def summarize(outcomes: list[Outcome]) -> dict:
    """Per input kind: success, share within the guide's targets, latency and first-token percentiles."""
    summary = {}
    for kind in ("text", "image", "all"):
        rows = [o for o in outcomes if kind == "all" or o.kind == kind]
        if not rows:
            continue
        ok = [o for o in rows if o.ok]
        latencies = [o.latency for o in ok]
        # A failed case counts as never answered, so it lies beyond every percentile of success.
        all_latencies = latencies + [float("inf")] * (len(rows) - len(ok))
        target = TARGETS.get(kind)
        summary[kind] = {
            "cases": len(rows),
            "success": len(ok) / len(rows),
            "within_target": (sum(1 for o in ok if target is None or o.latency <= target) / len(rows)
                              if target else sum(1 for o in ok if o.latency <= TARGETS[o.kind]) / len(rows)),
            **{f"p{q}": percentile(all_latencies, q) for q in (50, 95, 99)},
            "max": max(all_latencies),
            "ttft_p50": percentile([o.first_token for o in ok if o.first_token is not None], 50),
            "ttft_p95": percentile([o.first_token for o in ok if o.first_token is not None], 95),
            "providers": dict(Counter(o.provider or "none" for o in rows)),
            "hedged": sum(o.hedged for o in rows),
            "fallback": sum(o.fallback for o in rows),
            "errors": dict(Counter(o.error for o in rows if o.error)),
            "over_budget_max": max(o.over_budget for o in rows),
        }
    return summary


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return "∞" if seconds == float("inf") else f"{seconds:.1f}"


def markdown(results: dict[str, dict]) -> str:
    """The results as the tables RESULTS.md shows."""
    lines = ["| strategy | kind | cases | success | within guide target | p50 s | p95 s | p99 s | max s | "
             "first token p50 / p95 s | answered by | hedged / fallback |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for strategy, result in results.items():
        for kind in ("text", "image"):
            s = result["summary"].get(kind)
            if not s:
                continue
            providers = ", ".join(f"{k} {v}" for k, v in sorted(s["providers"].items()))
            lines.append(
                f"| {strategy} | {kind} | {s['cases']} | {s['success']:.1%} | {s['within_target']:.1%} | "
                f"{_fmt(s['p50'])} | {_fmt(s['p95'])} | {_fmt(s['p99'])} | {_fmt(s['max'])} | "
                f"{_fmt(s['ttft_p50'])} / {_fmt(s['ttft_p95'])} | {providers} | {s['hedged']} / {s['fallback']} |")
    for strategy, result in results.items():
        if result.get("litellm_answered_by"):
            behind = ", ".join(f"{k} {v}" for k, v in sorted(result["litellm_answered_by"].items()))
            lines.append(f"\n{strategy}: the Router's answers came from {behind}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300, help="assessments per strategy")
    parser.add_argument("--scale", type=float, default=0.05, help="wall seconds per simulated second")
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--only", choices=STRATEGIES, action="append", help="run only these strategies")
    parser.add_argument("--quick", action="store_true", help="60 cases per strategy")
    args = parser.parse_args(argv)
    count = 60 if args.quick else args.cases
    _scale_sdk_backoff(args.scale)
    cases = make_cases(count, args.seed)
    photos = make_photos()
    results = {}
    print(f"{count} cases per strategy ({sum(c.kind == 'image' for c in cases)} photos), scale {args.scale}")
    for strategy in args.only or STRATEGIES:
        outcomes, extra = run_strategy(strategy, cases, photos, scale=args.scale, seed=args.seed)
        results[strategy] = {"summary": summarize(outcomes), "outcomes": [asdict(o) for o in outcomes], **extra}
    table = markdown(results)
    print(table)
    OUT.mkdir(exist_ok=True)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "cpus": os.cpu_count(), "cases": count, "scale": args.scale, "seed": args.seed}
    (OUT / "load.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=str))
    (OUT / "load.md").write_text(f"{meta}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
