"""A simulated, time-scaled OpenAI-compatible provider server, for benchmarks.

The original backend's 2-3 minute answers did not come from slow code: they came from
how the providers behave. RunPod serverless scales to zero and cold-starts for one to
two and a half minutes; hosted APIs rate-limit, fail now and then, sometimes hang and
sometimes take twenty seconds to say anything; a clinic's uplink takes seconds to send
a phone photo. A benchmark that is to say whether a change helps has to meet all of
that, reproducibly, and in minutes rather than in a day. This module plays those
providers on one local HTTP server:

    from bench.simulator import Simulator, ServerlessProfile, HostedProfile

    profiles = {"runpod": ServerlessProfile(), "openai": HostedProfile()}
    with Simulator(profiles, scale=0.1, seed=1) as sim:
        sim.url("runpod")           # http://127.0.0.1:PORT/runpod/v1, for RUNPOD_BASE_URL
        ...                         # run the app against it
        sim.stats()["runpod"]       # requests, cold starts, workers booted, worker-seconds ...
        sim.records()               # one RequestRecord per request

    python -m bench.simulator --scale 0.1     # prints the URLs and serves until Ctrl-C

Time. Every number in a profile is in real-world seconds; `scale` multiplies each
simulated duration into wall-clock time, so at scale 0.1 a 90 s cold start takes 9 s.
Clients see wall time (Retry-After included, so their back-off stays in step); the
server records simulated seconds, so its metrics read like a day at the clinic. Divide
a client-side wall timing by `scale` to compare it with them.

Protocol. POST /<provider>/<anything>/chat/completions, where the first path segment
picks the profile (so /runpod/v1 and /openai/v1 are two providers on one port), answers
one JSON body or server-sent events (`stream: true`; a usage chunk when
`stream_options.include_usage`; `data: [DONE]`), keep-alive, like OpenAI and vLLM do.
GET /<provider>/v1/models lists the profile's model; GET /_stats returns `stats()` as
JSON (add `?records=1` for every request).

Tokens. There is no tokenizer: a token is about 4 ASCII characters or 1.5 other
(Hangul) characters, between what OpenAI's o200k and Qwen's tokenizers make of Korean
text. Usage, the max-token cut and generation speed all count these same tokens, so
they agree with one another if not with tiktoken. Streamed chunks carry as many tokens
as were generated since the previous chunk, at most one chunk per `min_chunk_interval`
of wall time, so thousands of concurrent streams stay cheap at any scale.

Answers are contract XML (see /work/shared/answer-contract.md): a random class of the 15
with two similar ones and Korean findings, 250-400 tokens in all, cut at the token limit
with finish_reason "length" (leaving the XML unclosed). Every random draw of request N
to a provider comes from its own `random.Random` seeded by (seed, provider, N), and
every worker boot likewise, so a run with the same seed and arrival order replays.

The 15 classes are written out here rather than imported from `providers`: the
simulator plays the remote model, and it should know the contract the way the model
does, not share code with the client it is measuring.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import http
import io
import itertools
import json
import math
import random
import sys
import threading
import time
import traceback
from collections import Counter, deque
from dataclasses import asdict, dataclass, replace
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "Profile", "ServerlessProfile", "HostedProfile", "llamacpp_profile", "default_profiles",
    "Simulator", "RequestRecord", "WorkerRecord", "contract_answer", "split_tokens", "count_tokens",
    "image_size",
]


# -- profiles ---------------------------------------------------------------------------------


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


def default_profiles() -> dict[str, Profile]:
    """The providers `python -m bench.simulator` serves: runpod, openai and a local llama.cpp."""
    return {"runpod": ServerlessProfile(), "openai": HostedProfile(), "local": llamacpp_profile()}


# -- metrics ----------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One chat-completions request as the server saw it.

    Times are simulated seconds: `arrived` counts from the simulator's start, the others
    from arrival. A record of a request still in flight has `duration` None.
    """

    id: int
    provider: str
    index: int                       # the request's number at its provider: the seed of its draws
    arrived: float
    body_bytes: int = 0
    stream: bool = False
    upload: float = 0.0              # the body crossing the uplink
    queue_wait: float = 0.0          # waiting for a worker slot (cold boots included)
    cold_start: bool = False         # served by a worker that was still booting when the request queued
    worker: int | None = None
    first_token: float | None = None
    duration: float | None = None    # arrival to the last byte sent (or to the end of the job)
    status: int | None = None        # 499: the client left before any response was sent
    # ok, length, rate_limited, error, hung, queue_timeout, bad_request, disconnected, cancelled
    outcome: str = "pending"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_tokens: int | None = None    # the limit the server applied
    finish_reason: str | None = None
    image_pixels: int = 0

    @property
    def done(self) -> bool:
        return self.duration is not None


@dataclass
class WorkerRecord:
    """One serverless worker's life: when it was asked for, ready, stopped; what it served."""

    provider: str
    worker: int
    always_on: bool
    started: float                   # simulated seconds since the start, when the boot began
    boot_seconds: float              # the cold start (0 for always-on workers)
    ready: float | None = None
    stopped: float | None = None     # None while it runs
    jobs: int = 0

    def billed_seconds(self, now: float) -> float:
        """Seconds RunPod would bill: from the boot's start to shutdown (or `now`), idle tail included."""
        return (self.stopped if self.stopped is not None else now) - self.started


# -- tokens, answers, images ------------------------------------------------------------------


def split_tokens(text: str) -> list[str]:
    """`text` in approximate tokens: 4 ASCII characters or 1.5 other characters each."""
    pieces: list[str] = []
    start, weight = 0, 0.0
    for i, ch in enumerate(text):
        weight += 0.25 if ch < "\x80" else 2 / 3
        if weight >= 1 - 1e-9:
            pieces.append(text[start:i + 1])
            start, weight = i + 1, weight - 1
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def count_tokens(text: str) -> int:
    """How many approximate tokens `text` is (see `split_tokens`)."""
    return len(split_tokens(text))


# (code, Korean name, risk), as in the answer contract.
_CLASSES = (
    (0, "광선각화증", "premalignant"), (1, "기저세포암", "malignant"), (2, "멜라닌세포모반", "benign"),
    (3, "보웬병", "premalignant"), (4, "비립종", "benign"), (5, "사마귀", "benign"),
    (6, "악성흑색종", "malignant"), (7, "지루각화증", "benign"), (8, "편평세포암", "malignant"),
    (9, "표피낭종", "benign"), (10, "피부섬유종", "benign"), (11, "피지샘증식증", "benign"),
    (12, "혈관종", "benign"), (13, "화농 육아종", "benign"), (14, "흑색점", "benign"),
)

_SITES = ("코 옆", "뺨", "이마", "등", "팔", "손등", "목", "두피", "정강이", "가슴")

_FINDINGS = (
    "병변은 주변 피부와의 경계가 비교적 뚜렷하며 약간 융기되어 있습니다.",
    "표면은 대체로 매끄러우나 일부에서 미세한 인설이 관찰됩니다.",
    "색조는 비교적 균일하며 가장자리로 갈수록 조금 옅어지는 양상입니다.",
    "주변 피부에 뚜렷한 염증 반응이나 궤양은 보이지 않습니다.",
    "사진의 조명과 초점 때문에 표면의 세부 구조는 제한적으로만 평가됩니다.",
    "더모스코피 영상이 없어 색소망이나 혈관 패턴은 확인하기 어렵습니다.",
    "병변의 비대칭성은 뚜렷하지 않고 색의 다양성도 크지 않습니다.",
    "중앙부가 약간 함몰되어 있고 가장자리는 둥글게 말려 올라간 모양입니다.",
    "표면 일부에 가는 모세혈관 확장이 보이며 약한 광택이 있습니다.",
    "갈색에서 흑갈색까지 색조가 섞여 있으나 경계는 비교적 규칙적입니다.",
    "촉진 소견은 알 수 없으나 사진상 단단하고 고정된 결절로 보입니다.",
    "최근의 크기 변화, 출혈, 가려움이나 통증 여부를 함께 확인하는 것이 좋습니다.",
    "환자의 나이와 병변의 위치를 고려하면 이 부위에서 흔히 보이는 양상에 가깝습니다.",
    "사진만으로는 다른 병변을 완전히 배제할 수 없으므로 경과 관찰이 필요합니다.",
    "같은 부위에 비슷한 병변이 더 있는지 전신 피부 검사를 권합니다.",
    "햇빛 노출이 많은 부위라면 자외선 차단을 함께 권고합니다.",
)

_ADVICE = {
    "malignant": "악성 종양의 가능성이 있으므로 가능한 한 빨리 피부과 전문의의 진찰과 조직검사를 받을 것을 권합니다.",
    "premalignant": "전암성 병변일 수 있어 피부과 진료를 통해 치료 여부를 결정하는 것이 좋습니다.",
    "benign": "양성 병변으로 보이지만 모양이나 크기가 변하면 피부과 진료를 받으시기 바랍니다.",
}

_DISCLAIMER = "※ 이 결과는 참고용이며 최종 진단은 전문의의 진찰이 필요합니다."


def _josa(word: str, after_consonant: str, after_vowel: str) -> str:
    """`word` with the particle its last syllable calls for (을/를, 과/와)."""
    last = word[-1]
    final = "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0
    return word + (after_consonant if final else after_vowel)


def contract_answer(rng: random.Random, tokens: int = 320) -> str:
    """A complete contract answer of about `tokens` tokens: a random class, two similar, Korean findings."""
    code, name, risk = rng.choice(_CLASSES)
    (c1, n1, _), (c2, n2, _) = rng.sample([c for c in _CLASSES if c[0] != code], 2)
    score = rng.randint(45, 92)
    rest = 100 - score
    s1 = rng.randint(max(1, rest // 4), max(1, rest * 2 // 3))
    s2 = rng.randint(0, max(0, min(s1, rest - s1)))
    opener = f"사진상 {rng.choice(_SITES)}에 위치한 약 {rng.randint(3, 25)} mm 크기의 병변입니다."
    closing = (f"이러한 소견을 종합하면 {_josa(name, '을', '를')} 가장 먼저 의심하며, "
               f"{_josa(n1, '과', '와')} {_josa(n2, '을', '를')} 감별 진단으로 고려해야 합니다.")
    findings = list(_FINDINGS)
    rng.shuffle(findings)

    def render(middle: list[str]) -> str:
        summary = " ".join([opener, *middle, closing, _ADVICE[risk]])
        return (f'<root><label id_code="{code}" score="{score}">{name}</label><summary>{summary}</summary>'
                f'<similar_labels><similar_label id_code="{c1}" score="{s1}">{n1}</similar_label>'
                f'<similar_label id_code="{c2}" score="{s2}">{n2}</similar_label></similar_labels></root>'
                f"\n{_DISCLAIMER}")

    middle: list[str] = []
    size = count_tokens(render(middle))   # then add sentences' own counts: cheap, and right within a token
    while findings:   # add sentences while that brings the answer closer to `tokens`
        extra = count_tokens(" " + findings[-1])
        if abs(size + extra - tokens) >= abs(size - tokens):
            break
        middle.append(findings.pop())
        size += extra
    return render(middle)


def _ramble(tokens: list[str], total: int) -> list[str]:
    """A runaway answer: after the XML the model keeps repeating itself until `total` tokens."""
    filler = split_tokens("\n" + " ".join(_FINDINGS))
    out = list(tokens)
    while len(out) < total:
        out.extend(filler[:total - len(out)])
    return out


_HEADER_CHARS = 256 * 1024   # base64 characters read first: 192 KB covers a JPEG's EXIF, ICC and SOF
_UNKNOWN_IMAGE = (512, 512)  # what a remote (http) image URL, which is never fetched, is counted as


def image_size(url: str) -> tuple[int, int] | None:
    """Width and height of a base64 data-URL image, from its header alone (no pixel decoding).

    The first 192 KB usually hold every JPEG marker up to the frame header; when they do
    not, the whole image is decoded from base64 (still without decoding pixels).
    """
    if not url.startswith("data:"):
        return None
    meta, _, data = url.partition(",")
    if ";base64" not in meta:
        return None
    from PIL import Image  # only needed for images; Pillow is one of the app's dependencies

    for chunk in (data[:_HEADER_CHARS], data) if len(data) > _HEADER_CHARS else (data,):
        try:
            raw = base64.b64decode(chunk[:len(chunk) // 4 * 4])
            with Image.open(io.BytesIO(raw)) as img:
                return img.size
        except (binascii.Error, ValueError, OSError, IndexError, SyntaxError, Image.DecompressionBombError):
            continue
    return None


def _read_prompt(messages: list) -> tuple[int, list[tuple[int, int, str | None]]]:
    """Text tokens of the conversation (4 per message of overhead), and (width, height, detail) per image."""
    tokens, images = 3, []
    for message in messages:
        if not isinstance(message, dict):
            continue
        tokens += 4
        content = message.get("content")
        if isinstance(content, str):
            tokens += count_tokens(content)
            continue
        for part in content if isinstance(content, list) else ():
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                tokens += count_tokens(str(part.get("text") or ""))
            elif part.get("type") == "image_url":
                ref = part.get("image_url")
                url = ref.get("url") if isinstance(ref, dict) else ref
                detail = ref.get("detail") if isinstance(ref, dict) else None
                size = image_size(url) if isinstance(url, str) else None
                images.append((*(size or _UNKNOWN_IMAGE), detail))
    return tokens, images


def _token_limit(body: dict, profile: Profile, room: int) -> int:
    """The answer's token limit: the smaller of the honoured request fields, never past the context."""
    fields = ["max_tokens"] + (["max_completion_tokens"] if profile.honours_max_completion_tokens else [])
    asked = [body.get(f) for f in fields]
    limits = [int(v) for v in asked if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return min([room, *limits])


# -- capacity: a rate-limit bucket and a serverless worker pool -------------------------------


class _TokenBucket:
    """Requests-per-minute limit: refills continuously, holds `capacity` at most."""

    def __init__(self, per_second: float, capacity: int) -> None:
        self.per_second, self.capacity = per_second, capacity
        self.tokens, self.at = float(capacity), 0.0

    def take(self, now: float) -> float:
        """Take one request's token at simulated time `now`; 0 if granted, else seconds until one is there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.per_second


class _QueueTimeout(Exception):
    """A request waited longer than the profile's queue_timeout for a worker slot."""


@dataclass(eq=False)
class _Worker:
    id: int
    record: WorkerRecord
    always_on: bool = False
    ready_at: float = math.inf       # wall (loop) time it became ready
    active: int = 0
    timer: asyncio.TimerHandle | None = None   # the pending boot or idle shutdown

    @property
    def ready(self) -> bool:
        return self.ready_at != math.inf


@dataclass(eq=False)
class _Waiter:
    future: asyncio.Future
    queued_at: float                 # wall (loop) time


class _WorkerPool:
    """RunPod serverless scaling: boots on demand, a FIFO queue, idle shutdown, scale to zero.

    Runs entirely on the simulator's event loop; timers are `call_later` handles, so a
    thousand queued requests cost a deque entry each, not a thread or a polling task.
    """

    def __init__(self, sim: "Simulator", name: str, profile: ServerlessProfile) -> None:
        self.sim, self.name, self.p = sim, name, profile
        self.loop = asyncio.get_running_loop()
        self.workers: list[_Worker] = []
        self.queue: deque[_Waiter] = deque()
        self._ids = itertools.count(1)
        self._boots = itertools.count()
        for _ in range(profile.active_workers):
            worker = self._new_worker(always_on=True, boot=0.0)
            worker.ready_at = self.loop.time()
            worker.record.ready = worker.record.started

    # -- used by requests -----------------------------------------------------------------

    async def acquire(self, record: RequestRecord) -> _Worker:
        """Wait for a slot (FIFO), waking or adding workers as RunPod would; fills in the record."""
        queued_at = self.loop.time()
        worker = self._free_worker() if not self.queue else None
        if worker is not None:
            self._assign(worker)
        else:
            future = self.loop.create_future()
            self.queue.append(_Waiter(future, queued_at))
            self._autoscale()
            if self.p.scale_delay > 0:
                self.loop.call_later(self.p.scale_delay * self.sim.scale, self._autoscale)
            expiry = None
            if self.p.queue_timeout is not None:
                expiry = self.loop.call_later(self.p.queue_timeout * self.sim.scale, _expire, future)
            try:
                worker = await future
            except asyncio.CancelledError:
                # Cancelled just after being handed a slot: give it back, or it leaks.
                if future.done() and not future.cancelled() and future.exception() is None:
                    self.release(future.result())
                raise
            finally:
                if expiry is not None:
                    expiry.cancel()
                record.queue_wait = (self.loop.time() - queued_at) / self.sim.scale
        record.cold_start = worker.ready_at > queued_at
        record.worker = worker.id
        return worker

    def release(self, worker: _Worker) -> None:
        """A request is done with its slot: hand it on, or start the idle countdown."""
        worker.active -= 1
        self._dispatch()
        if worker.active == 0 and not worker.always_on:
            self._arm_idle(worker)

    def close(self) -> None:
        for worker in self.workers:
            if worker.timer is not None:
                worker.timer.cancel()

    def load(self, worker: _Worker) -> float:
        """Generation speed factor on `worker` now: batching slows every stream a little."""
        return 1 + self.p.batch_slowdown * max(0, worker.active - 1)

    # -- scaling --------------------------------------------------------------------------

    def _free_worker(self) -> _Worker | None:
        free = [w for w in self.workers if w.ready and w.active < self.p.concurrency]
        return min(free, key=lambda w: (w.active, w.id)) if free else None

    def _assign(self, worker: _Worker) -> None:
        worker.active += 1
        worker.record.jobs += 1
        if worker.timer is not None and worker.ready:
            worker.timer.cancel()   # the idle countdown
            worker.timer = None

    def _dispatch(self) -> None:
        while self.queue:
            worker = self._free_worker()
            if worker is None:
                return
            waiter = self.queue.popleft()
            if waiter.future.done():   # gave up (cancelled or timed out) while queued
                continue
            self._assign(worker)
            waiter.future.set_result(worker)

    def _autoscale(self) -> None:
        """Boot workers for the backlog: at once from zero, else once the oldest has waited scale_delay."""
        waiting = [w for w in self.queue if not w.future.done()]
        room = self.p.max_workers - len(self.workers)
        if not waiting or room <= 0:
            return
        delay = self.p.scale_delay * self.sim.scale
        if self.workers and self.loop.time() - waiting[0].queued_at < delay * 0.999:
            return
        free = sum(self.p.concurrency - w.active for w in self.workers)  # booting workers count in full
        backlog = len(waiting) - free
        for _ in range(min(room, math.ceil(backlog / self.p.concurrency)) if backlog > 0 else 0):
            rng = random.Random(f"{self.sim.seed}/{self.name}/boot/{next(self._boots)}")
            worker = self._new_worker(always_on=False, boot=self.p.boot_seconds(rng))
            worker.timer = self.loop.call_later(worker.record.boot_seconds * self.sim.scale, self._on_ready, worker)

    def _new_worker(self, *, always_on: bool, boot: float) -> _Worker:
        record = WorkerRecord(self.name, next(self._ids), always_on, self.sim.now(), boot)
        worker = _Worker(record.worker, record, always_on)
        self.workers.append(worker)
        self.sim._add_worker(record)
        return worker

    def _on_ready(self, worker: _Worker) -> None:
        worker.timer = None
        worker.ready_at = self.loop.time()
        worker.record.ready = self.sim.now()
        self._dispatch()
        if worker.active == 0:   # everyone it was booted for gave up meanwhile
            self._arm_idle(worker)

    def _arm_idle(self, worker: _Worker) -> None:
        if worker.timer is not None:
            worker.timer.cancel()
        worker.timer = self.loop.call_later(self.p.idle_timeout * self.sim.scale, self._retire, worker)

    def _retire(self, worker: _Worker) -> None:
        worker.timer = None
        if worker.active == 0 and worker in self.workers:
            self.workers.remove(worker)
            worker.record.stopped = self.sim.now()


def _expire(future: asyncio.Future) -> None:
    if not future.done():
        future.set_exception(_QueueTimeout())


# -- HTTP/1.1 plumbing ------------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Connection:
    """One client connection: reads requests, writes responses, notices when the client leaves.

    Writes after the client left are dropped silently, so a job that outlives its client
    (cancel_on_disconnect False) can run to its end without caring.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.leftover = b""              # a byte read while watching for a hang-up (a pipelined request)
        self.gone = False
        self.gone_event = asyncio.Event()
        self.head_sent = False

    async def read_request(self) -> _Request | None:
        """The next request, or None when the client closed the connection between requests."""
        try:
            head = self.leftover + await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if (self.leftover + exc.partial).strip():
                raise _HttpError(400, "Incomplete request head.") from None
            return None
        except asyncio.LimitOverrunError:
            raise _HttpError(431, "Request head too large.") from None
        self.leftover = b""
        lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise _HttpError(400, "Malformed request line.") from None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise _HttpError(400, "Bad Content-Length.") from None
            body = await self.reader.readexactly(length) if length > 0 else b""
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        self.head_sent = False
        return _Request(method.upper(), target, headers, body, keep)

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _HttpError(400, "Bad chunk size.") from None
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def wait_gone(self) -> bytes:
        """Wait for the client to hang up (b"") or, rarely, to pipeline its next request (one byte)."""
        try:
            return await self.reader.read(1)
        except ConnectionError:
            return b""

    def mark_gone(self) -> None:
        self.gone = True
        self.gone_event.set()

    def write(self, data: bytes) -> None:
        if not self.gone and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        if self.gone:
            return
        try:
            await self.writer.drain()
        except ConnectionError:
            self.mark_gone()

    def write_head(self, status: int, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {_reason(status)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.head_sent = True

    async def respond_json(self, status: int, body: dict, *, keep: bool, headers: dict | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.write_head(status, {"content-type": "application/json", "content-length": str(len(data)),
                                 "connection": "keep-alive" if keep else "close", **(headers or {})})
        self.write(data)
        await self.drain()

    def start_stream(self, *, keep: bool, headers: dict | None = None) -> None:
        self.write_head(200, {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                              "transfer-encoding": "chunked", "connection": "keep-alive" if keep else "close",
                              **(headers or {})})

    def send_event(self, data: dict | str) -> None:
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        chunk = b"data: " + payload.encode("utf-8") + b"\n\n"
        self.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def end_stream(self) -> None:
        self.write(b"0\r\n\r\n")


_ERROR_KINDS = {
    400: ("invalid_request_error", None), 404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"), 431: ("invalid_request_error", None),
    500: ("server_error", None), 503: ("server_error", None), 504: ("timeout", None),
}


def _error_body(status: int, message: str) -> dict:
    kind, code = _ERROR_KINDS.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _seconds(value: float) -> str:
    """Seconds for a Retry-After header: fractional (non-standard) because time is scaled."""
    return f"{math.ceil(value * 1000) / 1000:g}"


# -- the simulator ----------------------------------------------------------------------------


class _Provider:
    def __init__(self, name: str, profile: Profile) -> None:
        self.name, self.profile = name, profile
        self.count = itertools.count()
        self.pool: _WorkerPool | None = None
        self.bucket = (_TokenBucket(profile.rate_limit_rpm / 60, profile.burst())
                       if profile.rate_limit_rpm else None)


class Simulator:
    """Simulated providers on one local HTTP server, each under its own path prefix.

    `start()` runs the server on a background thread with its own event loop and returns
    the base URL of each provider; `stop()` ends it, closing every connection. Metrics
    (`records()`, `workers()`, `stats()`) can be read from any thread at any time.
    """

    def __init__(self, profiles: dict[str, Profile], scale: float = 1.0, seed: int = 0, *,
                 host: str = "127.0.0.1", port: int = 0, min_chunk_interval: float = 0.02) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        for name in profiles:
            if not name or "/" in name or name == "_stats":
                raise ValueError(f"bad provider name {name!r}: it becomes a path segment")
        self.profiles = dict(profiles)
        self.scale, self.seed = scale, seed
        self.host = host
        # Wall seconds between two chunks of one stream at most: what a screen can show anyway.
        self.min_chunk_interval = min_chunk_interval
        self._port = port
        self._providers = {name: _Provider(name, p) for name, p in profiles.items()}
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._workers: list[WorkerRecord] = []
        self._ids = itertools.count(1)
        self._t0 = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Serve on a background thread; returns {provider: base URL}. Starting twice is harmless."""
        if self._thread is None:
            _raise_open_file_limit()
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(target=self._run, args=(ready, failure), name="bench-simulator",
                                            daemon=True)
            self._thread.start()
            ready.wait()
            if failure:
                self._thread.join()
                self._thread = None
                raise failure[0]
        return {name: self.url(name) for name in self.profiles}

    def stop(self) -> None:
        """Stop serving: every connection closes, every job and timer ends. Metrics stay readable."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=10)

    def __enter__(self) -> "Simulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._thread is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    def url(self, name: str) -> str:
        """The OpenAI-style base URL of provider `name`, e.g. http://127.0.0.1:PORT/runpod/v1."""
        if name not in self.profiles:
            raise KeyError(f"no provider {name!r}; known: {', '.join(self.profiles)}")
        return f"http://{self.host}:{self.port}/{name}/v1"

    def now(self) -> float:
        """Simulated seconds since the simulator was created."""
        return (time.monotonic() - self._t0) / self.scale

    # -- metrics ----------------------------------------------------------------------------

    def records(self, provider: str | None = None) -> list[RequestRecord]:
        """A snapshot of the request records (copies), in order of arrival."""
        with self._lock:
            return [replace(r) for r in self._records if provider is None or r.provider == provider]

    def workers(self, provider: str | None = None) -> list[WorkerRecord]:
        """A snapshot of every serverless worker that ran or runs (always-on ones included)."""
        with self._lock:
            return [replace(w) for w in self._workers if provider is None or w.provider == provider]

    def reset_metrics(self) -> None:
        """Forget request records and stopped workers (between benchmark scenarios); live workers stay."""
        with self._lock:
            self._records.clear()
            self._workers[:] = [w for w in self._workers if w.stopped is None]

    def stats(self) -> dict[str, dict]:
        """Per provider: requests and their outcomes, cold starts, workers booted, what the warm-ups cost."""
        now, records, workers = self.now(), self.records(), self.workers()
        out = {}
        for name in self.profiles:
            rs = [r for r in records if r.provider == name]
            ws = [w for w in workers if w.provider == name]
            boots = [w for w in ws if not w.always_on]
            waits = [r.queue_wait for r in rs if r.worker is not None]
            out[name] = {
                "requests": len(rs),
                "in_flight": sum(not r.done for r in rs),
                "outcomes": dict(Counter(r.outcome for r in rs)),
                "statuses": dict(Counter(str(r.status) for r in rs if r.status is not None)),
                "cold_starts": sum(r.cold_start for r in rs),
                "workers_booted": len(boots),
                "workers_live": sum(w.stopped is None for w in ws),
                "boot_seconds": round(sum(w.boot_seconds for w in boots), 3),
                "worker_seconds": round(sum(w.billed_seconds(now) for w in ws), 3),
                "queue_wait_mean": round(sum(waits) / len(waits), 3) if waits else 0.0,
                "queue_wait_max": round(max(waits), 3) if waits else 0.0,
                "prompt_tokens": sum(r.prompt_tokens for r in rs),
                "completion_tokens": sum(r.completion_tokens for r in rs),
            }
        return out

    def _add_worker(self, record: WorkerRecord) -> None:
        with self._lock:
            self._workers.append(record)

    # -- the event loop -----------------------------------------------------------------------

    def _run(self, ready: threading.Event, failure: list) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, failure))
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event, failure: list) -> None:
        try:
            self._stopping = asyncio.Event()
            for provider in self._providers.values():
                if isinstance(provider.profile, ServerlessProfile):
                    provider.pool = _WorkerPool(self, provider.name, provider.profile)
            server = await asyncio.start_server(self._on_connection, self.host, self._port, backlog=4096,
                                                limit=1 << 20)
            self._port = server.sockets[0].getsockname()[1]
        except BaseException as exc:  # e.g. the port is taken: report it to start()'s caller
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            # Connections first (they cancel their jobs), then whatever is left: orphaned jobs, late accepts.
            for tasks in (list(self._tasks), [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]):
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            for provider in self._providers.values():
                if provider.pool is not None:
                    provider.pool.close()

    async def _sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        if seconds > 0:
            await asyncio.sleep(seconds * self.scale)

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        conn = _Connection(reader, writer)
        try:
            while not conn.gone:
                try:
                    request = await conn.read_request()
                except _HttpError as exc:
                    await conn.respond_json(exc.status, _error_body(exc.status, str(exc)), keep=False)
                    break
                if request is None or not await self._route(conn, request):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass   # stop() ends the connection; asyncio.streams would log a cancelled handler as an error
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _route(self, conn: _Connection, req: _Request) -> bool:
        """Answer one request; returns whether the connection stays open."""
        url = urlsplit(req.target)
        segments = [s for s in url.path.split("/") if s]
        if req.method == "GET" and segments == ["_stats"]:
            body = {"scale": self.scale, "now": self.now(), "providers": self.stats()}
            if parse_qs(url.query).get("records"):
                body["records"] = [asdict(r) for r in self.records()]
            await conn.respond_json(200, body, keep=req.keep_alive)
            return req.keep_alive
        provider = self._providers.get(segments[0]) if segments else None
        if provider is None:
            message = f"No simulated provider at {url.path!r}; known: {', '.join(self.profiles)}."
            await conn.respond_json(404, _error_body(404, message), keep=req.keep_alive)
            return req.keep_alive
        path = url.path.rstrip("/")
        if req.method == "POST" and path.endswith("/chat/completions"):
            return await self._serve_chat(conn, provider, req)
        if req.method == "GET" and path.endswith("/models"):
            model = {"id": provider.profile.model, "object": "model", "created": 0, "owned_by": provider.name}
            await conn.respond_json(200, {"object": "list", "data": [model]}, keep=req.keep_alive)
            return req.keep_alive
        await conn.respond_json(404, _error_body(404, f"No route for {req.method} {url.path}."), keep=req.keep_alive)
        return req.keep_alive

    async def _serve_chat(self, conn: _Connection, provider: _Provider, req: _Request) -> bool:
        """Run the request as a job while watching the socket, so a client that hangs up is noticed at once."""
        record = RequestRecord(id=next(self._ids), provider=provider.name, index=next(provider.count),
                               arrived=self.now(), body_bytes=len(req.body))
        with self._lock:
            self._records.append(record)
        job = asyncio.create_task(self._chat(conn, provider, req, record))
        watch = asyncio.create_task(conn.wait_gone())
        try:
            await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:   # the simulator is stopping
            job.cancel()
            watch.cancel()
            await asyncio.gather(job, watch, return_exceptions=True)
            raise
        if not watch.done():
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if watch.done() and not watch.cancelled():
            data = watch.result()
            if data:                        # the next request, pipelined: keep it, let the job finish
                conn.leftover = data
                return await job
            conn.mark_gone()
            if not job.done():
                if provider.profile.cancel_on_disconnect:
                    job.cancel()
                    await asyncio.gather(job, return_exceptions=True)
                else:                       # the job runs on without a listener, holding its slot
                    self._tasks.add(job)
                    job.add_done_callback(self._tasks.discard)
            return False
        return job.result()

    async def _chat(self, conn: _Connection, provider: _Provider, req: _Request, rec: RequestRecord) -> bool:
        """One chat completion: upload, admission, queue, first token, generation. Returns keep-alive."""
        p, keep = provider.profile, req.keep_alive
        rng = random.Random(f"{self.seed}/{provider.name}/{rec.index}")
        worker: _Worker | None = None
        try:
            if p.uplink_bps:
                rec.upload = len(req.body) * 8 / p.uplink_bps
                await self._sleep(rec.upload)
            try:
                body = json.loads(req.body)
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                rec.outcome = "bad_request"
                return await self._error(conn, rec, 400, "The body must be JSON with a 'messages' list.", keep)
            rec.stream = bool(body.get("stream"))

            # Every draw up front, in one order, so request N behaves the same whichever branch it takes.
            fate = rng.random()
            error = fate < p.error_rate
            hang = not error and fate < p.error_rate + p.hang_rate
            slow = not (error or hang) and fate < p.error_rate + p.hang_rate + p.slow_rate
            delay = rng.uniform(*p.slow_first_token) if slow else p.first_token_delay(rng)
            speed = p.tokens_per_second * (rng.lognormvariate(0, p.speed_jitter) if p.speed_jitter else 1.0)
            answer = contract_answer(rng, rng.randint(*p.answer_tokens))
            runaway = rng.random() < p.runaway_rate

            if provider.bucket is not None:
                wait = provider.bucket.take(self.now())
                if wait > 0:
                    rec.outcome = "rate_limited"
                    wall = wait * self.scale
                    headers = {"retry-after": _seconds(wall), "retry-after-ms": str(math.ceil(wall * 1000)),
                               "x-ratelimit-limit-requests": f"{p.rate_limit_rpm:g}",
                               "x-ratelimit-remaining-requests": "0",
                               "x-ratelimit-reset-requests": f"{_seconds(wall)}s"}
                    message = (f"Rate limit reached for {p.model}: limit {p.rate_limit_rpm:g} requests per "
                               f"minute. Please try again in {_seconds(wall)}s.")
                    return await self._error(conn, rec, 429, message, keep, headers)

            text_tokens, images = _read_prompt(body["messages"])
            rec.image_pixels = sum(w * h for w, h, _ in images)
            rec.prompt_tokens = text_tokens + sum(p.image_tokens(w, h, d) for w, h, d in images)
            room = p.context_limit - rec.prompt_tokens
            if room <= 0:
                rec.outcome = "bad_request"
                message = (f"This model's maximum context length is {p.context_limit} tokens. However, your "
                           f"messages resulted in {rec.prompt_tokens} tokens.")
                return await self._error(conn, rec, 400, message, keep)
            rec.max_tokens = limit = _token_limit(body, p, room)
            tokens = split_tokens(answer)
            if runaway:
                tokens = _ramble(tokens, limit + 1)
            rec.finish_reason = "length" if len(tokens) > limit else "stop"
            tokens = tokens[:limit]

            if provider.pool is not None:
                try:
                    worker = await provider.pool.acquire(rec)
                except _QueueTimeout:
                    rec.outcome = "queue_timeout"
                    message = f"No worker took the job within {p.queue_timeout:g} s."
                    return await self._error(conn, rec, 504, message, keep)
                speed /= provider.pool.load(worker)
            if error:
                await self._sleep(delay)
                rec.outcome = "error"
                status = 500 if fate < p.error_rate / 2 else 503
                message = ("The server had an error while processing your request." if status == 500
                           else "The engine is currently overloaded, please try again later.")
                return await self._error(conn, rec, status, message, keep)
            if hang:
                rec.outcome = "hung"
                await conn.gone_event.wait()
                return False

            model = body.get("model") or p.model
            cid = f"chatcmpl-sim{rec.id}"
            if rec.stream:   # headers as soon as the engine takes the request, as vLLM does
                conn.start_stream(keep=keep)
                rec.status = 200
                await conn.drain()
            prefill = rec.prompt_tokens / p.prefill_tokens_per_second
            prefill += rec.image_pixels / 1e6 * p.image_seconds_per_megapixel
            await self._sleep(delay + prefill)
            rec.first_token = self.now() - rec.arrived
            usage = {"prompt_tokens": rec.prompt_tokens, "completion_tokens": len(tokens),
                     "total_tokens": rec.prompt_tokens + len(tokens)}
            if rec.stream:
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                await self._stream(conn, rec, tokens, speed, cid, model, usage if include_usage else None)
            else:
                await self._sleep(len(tokens) / speed)
                rec.completion_tokens = len(tokens)
                message = {"role": "assistant", "content": "".join(tokens), "refusal": None}
                await conn.respond_json(200, {
                    "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "message": message, "logprobs": None,
                                 "finish_reason": rec.finish_reason}],
                    "usage": usage, "system_fingerprint": None}, keep=keep)
                rec.status = 200
            rec.outcome = "disconnected" if conn.gone else ("length" if rec.finish_reason == "length" else "ok")
            return keep
        except Exception:  # a bug in the simulator: say so, loudly, and keep serving
            traceback.print_exc(file=sys.stderr)
            rec.outcome = "error"
            if not conn.head_sent:
                return await self._error(conn, rec, 500, "Simulator error (see its stderr).", False)
            return False
        finally:
            if worker is not None:
                provider.pool.release(worker)
            if rec.outcome == "pending":
                rec.outcome = "disconnected" if conn.gone else "cancelled"
            if rec.status is None and conn.gone:
                rec.status = 499
            rec.duration = self.now() - rec.arrived

    async def _stream(self, conn: _Connection, rec: RequestRecord, tokens: list[str], speed: float,
                      cid: str, model: str, usage: dict | None) -> None:
        """Send `tokens` at `speed` tokens per simulated second, as server-sent events."""
        created = int(time.time())

        def event(choices: list, with_usage: dict | None = None) -> dict:
            data = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": None, "choices": choices}
            if usage is not None:
                data["usage"] = with_usage
            return data

        def delta(d: dict, finish: str | None = None) -> dict:
            return event([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

        loop = asyncio.get_running_loop()
        start, step = loop.time(), self.scale / speed   # wall seconds per token
        conn.send_event(delta({"role": "assistant", "content": ""}))
        sent = 0
        while sent < len(tokens):
            due = min(len(tokens), 1 + int((loop.time() - start) / step))
            if due > sent:
                conn.send_event(delta({"content": "".join(tokens[sent:due])}))
                sent = rec.completion_tokens = due
                await conn.drain()
            if sent < len(tokens):
                await asyncio.sleep(max(self.min_chunk_interval, start + sent * step - loop.time()))
        conn.send_event(delta({}, rec.finish_reason))
        if usage is not None:
            conn.send_event(event([], usage))
        conn.send_event("[DONE]")
        conn.end_stream()
        await conn.drain()

    async def _error(self, conn: _Connection, rec: RequestRecord, status: int, message: str, keep: bool,
                     headers: dict | None = None) -> bool:
        rec.status = status
        await conn.respond_json(status, _error_body(status, message), keep=keep, headers=headers)
        return keep


def _raise_open_file_limit(target: int = 65536) -> None:
    """Let the process hold thousands of sockets (both ends live here when a benchmark runs in-process)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = target if hard == resource.RLIM_INFINITY else min(target, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator",
                                     description="Serve simulated RunPod, OpenAI and llama.cpp providers.")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="wall seconds per simulated second, e.g. 0.1 (default 1: real time)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    args = parser.parse_args(argv)
    sim = Simulator(default_profiles(), scale=args.scale, seed=args.seed, host=args.host, port=args.port)
    for name, url in sim.start().items():
        print(f"{name:8} {url}", flush=True)
    print(f"{'stats':8} http://{args.host}:{sim.port}/_stats", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
        print(json.dumps(sim.stats(), indent=2, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
