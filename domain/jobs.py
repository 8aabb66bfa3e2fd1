"""A background job as every job store and page sees it: its states, its record and its errors.

One definition for both stores (SQL in `storage/jobs/`, Redis in `storage/jobs/redis.py`):
what a job is, what of its request a store keeps (plain JSON types only; the photo's bytes
apart), and the messages a clinician reads, so a job reads and fails the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.errors import DiagnosisError
from domain.messages import Message
from domain.request import DiagnosisRequest, PatientInfo
from domain.result import Diagnosis
from utils.images import ShrunkImage

QUEUED, RUNNING, DONE, FAILED, INTERRUPTED = "queued", "running", "done", "failed", "interrupted"

# What a restart leaves of a job that was waiting or running (both stores), as a message and its English text.
RESTARTED_MESSAGE = Message("job.restarted")
RESTARTED = str(RESTARTED_MESSAGE)

# What a job sealed under a DATA_ENCRYPTION_KEY this process lacks shows, and what running it again raises.
UNREADABLE_MESSAGE = Message("job.unreadable")
UNREADABLE = str(UNREADABLE_MESSAGE)


class JobUnreadable(DiagnosisError):
    """A job's request or result was sealed under a DATA_ENCRYPTION_KEY this process does not hold."""

    def __init__(self) -> None:
        super().__init__(UNREADABLE_MESSAGE)


class JobStoreUnavailable(DiagnosisError):
    """The store that holds the jobs (Redis with REDIS_URL set, else the database) did not answer."""

    def __init__(self, store: str = "redis") -> None:
        """`store` names the store that did not answer, for the clinician's message: "redis" or "database"."""
        super().__init__(Message("job.store_down", {"store": store}))


class TooManyQueued(DiagnosisError):
    """The user already has JOB_MAX_QUEUED_PER_USER jobs waiting: one clinic's burst must not delay everyone's."""

    def __init__(self, limit: int) -> None:
        """`limit` is JOB_MAX_QUEUED_PER_USER, for the message."""
        super().__init__(Message("job.too_many_queued", {"limit": limit}))
        self.limit = limit


@dataclass(frozen=True)
class Job:
    """One background assessment as the Jobs list shows it.

    `unreadable`: sealed under another key; `text` is then empty, `result` None and `error` says why.
    `error` is the English text (the API, the command line); `error_message` the same as a message id and values
    for the UI to translate (None for a job that failed before message ids were kept).
    """

    id: str
    created_at: float
    updated_at: float
    status: str
    kind: str
    provider: str | None
    text: str
    user: str | None
    error: str | None
    elapsed_ms: float | None
    result: Diagnosis | None
    unreadable: bool = False
    error_message: Message | None = None

    @property
    def finished(self) -> bool:
        """True once the job will not change by itself any more."""
        return self.status in (DONE, FAILED, INTERRUPTED)


def _image_record(image: ShrunkImage | None) -> dict[str, Any] | None:
    if image is None:
        return None
    return {"width": image.width, "height": image.height, "original_width": image.original_width,
            "original_height": image.original_height, "original_bytes": image.original_bytes,
            "original_format": image.original_format, "removed": list(image.removed)}


def request_record(request: DiagnosisRequest) -> dict[str, Any]:
    """What a job store keeps of a request, besides the photo's bytes (plain JSON types only)."""
    return {"text": request.text, "info": request.info.canonical(), "language": request.language,
            "provider": request.provider, "use_cache": request.use_cache, "fallback": request.fallback,
            "source": request.source, "image": _image_record(request.image),
            "second_reading_of": request.second_reading_of, "demo": request.demo}


def request_from_record(record: dict[str, Any], jpeg: bytes | None, user: str | None) -> DiagnosisRequest:
    """The request `request_record` and the photo's bytes describe, as the job will run it."""
    image = None
    if jpeg is not None and record.get("image"):
        meta = record["image"]
        image = ShrunkImage(jpeg=jpeg, **{**meta, "removed": tuple(meta["removed"])})
    info = PatientInfo(**{k: v for k, v in record["info"].items() if k in ("age", "sex", "body_site", "duration")})
    return DiagnosisRequest(text=record["text"], image=image, info=info, language=record["language"],
                            provider=record["provider"], use_cache=record["use_cache"],
                            fallback=record.get("fallback", True), user=user,
                            source=record.get("source", "job"),  # records from before `source` was kept
                            second_reading_of=record.get("second_reading_of"), demo=bool(record.get("demo")))
