"""What the simulator measured: one record per request and one per serverless worker."""

from __future__ import annotations

from dataclasses import dataclass


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
        """Whether the request has ended (answered, refused, or given up on)."""
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
