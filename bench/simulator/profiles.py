"""How each simulated provider behaves: its network, speed, limits, failures and admission.

Every number is in real-world seconds (or per real-world second); the simulator's
`scale` turns them into wall time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace


@dataclass(kw_only=True)
class Profile:
    """What every simulated provider has: network, speed, limits, answers, failures, admission.

    Subclasses say how a request reaches the model (a pool of scale-to-zero workers, or
    a provider with capacity to spare) and how long the first token takes. All durations
    are real-world seconds; the simulator's `scale` turns them into wall time.
    """

    model: str = "sim-model"
    # The clinic's uplink, bits per second: the request body takes len(body) * 8 / uplink_bps
    # seconds to arrive before anything else happens. 2 Mbit/s is a typical small-clinic
    # ADSL/LTE upload; None means instant (a server on the LAN).
    uplink_bps: float | None = 2_000_000
    tokens_per_second: float = 40.0             # generation speed of one answer on an idle server
    speed_jitter: float = 0.1                   # sigma of a lognormal factor on that speed, per request
    prefill_tokens_per_second: float = 3000.0   # prompt processing before the first token
    image_seconds_per_megapixel: float = 1.0    # vision encoder and preprocessing, per decoded megapixel
    max_image_tokens: int = 16384               # vLLM's Qwen2-VL default cap (max_pixels 12,845,056 / 28²)
    # Current vLLM and OpenAI honour max_completion_tokens; llama.cpp's server and older vLLM
    # read only max_tokens and otherwise generate until the context is full.
    honours_max_completion_tokens: bool = True
    context_limit: int = 8192
    answer_tokens: tuple[int, int] = (250, 400)  # length of a complete answer, uniform
    runaway_rate: float = 0.0                    # share of answers that ramble on past the XML to the limit
    # None: each answer's class is drawn at random. A share: the class follows the case (every provider so set
    # reads one case alike), except in this share of cases, where this provider reads another class (double
    # reading's disagreements; `answers.case_class`).
    differ_rate: float | None = None
    error_rate: float = 0.0                      # share answered 500/503 after the first-token delay
    hang_rate: float = 0.0                       # share accepted and never answered, until the client leaves
    slow_rate: float = 0.0                       # share whose first token takes `slow_first_token`
    slow_first_token: tuple[float, float] = (5.0, 20.0)
    rate_limit_rpm: float | None = None          # token bucket refilled at rpm/60 per second; 429 when empty
    rate_limit_burst: int | None = None          # bucket size; None: one second's worth (OpenAI's quantization)
    # Whether a client that hangs up stops its request. False models a queue that never
    # learns the client left: the job keeps its worker slot until it would have finished.
    cancel_on_disconnect: bool = True

    def first_token_delay(self, rng: random.Random) -> float:
        """Seconds from the start of processing to the first token, before prompt and image costs."""
        raise NotImplementedError

    def image_tokens(self, width: int, height: int, detail: str | None) -> int:
        """Prompt tokens one image costs: one per 28x28 patch, as Qwen2-VL-style models in vLLM count."""
        return min(self.max_image_tokens, math.ceil(width / 28) * math.ceil(height / 28))

    def burst(self) -> int:
        """The rate-limit bucket's size."""
        if self.rate_limit_burst is not None:
            return max(1, self.rate_limit_burst)
        return max(1, math.ceil((self.rate_limit_rpm or 60) / 60))


@dataclass(kw_only=True)
class ServerlessProfile(Profile):
    """RunPod serverless running vLLM: scale-to-zero workers, cold boots, a FIFO queue.

    The worker defaults are RunPod's endpoint defaults (0 active workers, 3 max workers,
    5 s idle timeout), so sporadic traffic meets a cold start almost every time, as the
    clinic did. Cold boots are triangular between 60 and 150 s with the mode at 75 s
    (mean 95 s): most boots find the image cached on the host, some pull it and load the
    weights over the network. Requests wait in one FIFO queue when every slot is busy.
    """

    model: str = "clinic-derm-v1"
    active_workers: int = 0            # always-on workers: warm from the start, never idle out
    max_workers: int = 3               # all workers, active ones included
    idle_timeout: float = 5.0          # a worker idle this long shuts down
    cold_start: tuple[float, float] = (60.0, 150.0)
    cold_start_mode: float = 75.0
    # Requests one worker serves at once. worker-vllm admits far more, but a vision model with
    # images on one 24 GB GPU is bound by its KV cache; 4 keeps queueing visible under load.
    concurrency: int = 4
    # RunPod's default "queue delay" scaler adds a worker once a request has waited this long.
    # A request that finds no worker at all wakes one at once (scale from zero).
    scale_delay: float = 4.0
    # Seconds a request may wait for a slot before the gateway answers 504. None: wait for ever.
    # RunPod's real limit on its OpenAI route is not documented; a proxy in front may cut earlier.
    queue_timeout: float | None = None
    first_token: tuple[float, float] = (0.4, 0.8)   # warm time to first token, uniform
    batch_slowdown: float = 0.08      # each extra concurrent request on a worker slows generation by 8 %

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.max_workers < 1:
            raise ValueError("concurrency and max_workers must be at least 1")
        if not 0 <= self.active_workers <= self.max_workers:
            raise ValueError("active_workers must be between 0 and max_workers")
        low, high = self.cold_start
        if not low <= self.cold_start_mode <= high:
            raise ValueError("cold_start_mode must lie within cold_start")

    def first_token_delay(self, rng: random.Random) -> float:
        return rng.uniform(*self.first_token)

    def boot_seconds(self, rng: random.Random) -> float:
        """How long one cold boot takes: image pull, container start, model load, engine warm-up."""
        low, high = self.cold_start
        return rng.triangular(low, high, self.cold_start_mode)


@dataclass(kw_only=True)
class HostedProfile(Profile):
    """A hosted API such as OpenAI's: always warm, rate-limited, with rare failures and slow tails.

    First tokens are lognormal around 0.5 s; 2 % of requests take 5-20 s instead, 0.5 %
    fail with 500/503 and 0.3 % hang. Those shares are assumptions of the right order
    for an ordinary day, not measurements: tune them to the clinic's own logs. 500
    requests per minute is OpenAI's tier-1 limit for the mini models; OpenAI says limits
    may be enforced over shorter windows, so the bucket holds one second's worth.
    """

    model: str = "gpt-4o-mini"
    tokens_per_second: float = 80.0
    speed_jitter: float = 0.2
    prefill_tokens_per_second: float = 20000.0
    image_seconds_per_megapixel: float = 0.1
    context_limit: int = 128_000
    first_token_median: float = 0.5
    first_token_sigma: float = 0.4
    error_rate: float = 0.005
    hang_rate: float = 0.003
    slow_rate: float = 0.02
    rate_limit_rpm: float | None = 500.0

    def first_token_delay(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.first_token_median), self.first_token_sigma)

    def image_tokens(self, width: int, height: int, detail: str | None) -> int:
        """OpenAI's vision pricing: 85 at low detail, else 85 + 170 per 512-pixel tile after resizing."""
        if detail == "low":
            return 85
        fit = min(1.0, 2048 / max(width, height))
        width, height = width * fit, height * fit
        shrink = min(1.0, 768 / min(width, height))
        width, height = width * shrink, height * shrink
        return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def llamacpp_profile(**changes) -> ServerlessProfile:
    """A llama.cpp server on the clinic's LAN: one always-on slot, reads only max_tokens.

    Modelled as a pool with one worker that never idles out; `changes` override any field.
    """
    base = ServerlessProfile(
        model="local-gguf", active_workers=1, max_workers=1, concurrency=1, uplink_bps=None,
        honours_max_completion_tokens=False, context_limit=4096, tokens_per_second=25.0,
        prefill_tokens_per_second=800.0, image_seconds_per_megapixel=2.0, first_token=(0.05, 0.2))
    return replace(base, **changes)


def fixed_hosted(profile: HostedProfile, seconds: float, first_token: float = 0.5) -> HostedProfile:
    """`profile` answering every request in about `seconds`: first token at `first_token` s, then a fixed-length
    answer at a fixed speed; no slow tails, failures, hangs, jitter, upload time or rate limit."""
    if seconds <= first_token:
        raise ValueError("seconds must be longer than the first token's delay")
    tokens = max(1, round((seconds - first_token) * profile.tokens_per_second))
    return replace(profile, uplink_bps=None, speed_jitter=0.0, error_rate=0.0, hang_rate=0.0, slow_rate=0.0,
                   rate_limit_rpm=None, answer_tokens=(tokens, tokens), prefill_tokens_per_second=1e9,
                   image_seconds_per_megapixel=0.0, first_token_median=first_token, first_token_sigma=0.0)


def default_profiles() -> dict[str, Profile]:
    """The providers `python -m bench.simulator` serves: runpod, openai and a local llama.cpp."""
    return {"runpod": ServerlessProfile(), "openai": HostedProfile(), "local": llamacpp_profile()}
