"""The few exceptions the engine raises; each message says what to do about it.

Each carries a `Message` (domain/messages.py): an id and its values, so the UI says it in the
clinician's language, while `str(exc)` is the English text the command line, the HTTP API and
the logs show. Messages never carry an API key, patient text or image bytes.
"""

from __future__ import annotations

from domain.messages import Message, Said


class DiagnosisError(Said):
    """Base of every error `diagnose` raises on purpose, said as a `Message` (see `Said`)."""


class InputError(DiagnosisError):
    """The clinician's input cannot be assessed (nothing given, unreadable or oversized photo)."""


class ProviderError(DiagnosisError):
    """A provider could not give an answer."""

    # True when the provider refused the request itself (key, model, URL, body): asking it again, even as a
    # hedge or a fallback lane in the same race, would only be refused again and billed or logged twice.
    refusal = False

    def __init__(self, message: Message | str, *, provider: str = "", retryable: bool = False,
                 retry_after: float | None = None) -> None:
        """`message` as for `DiagnosisError`; `provider` the name of the provider that failed."""
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable
        self.retry_after = retry_after


class ProviderNotConfigured(ProviderError):
    """The provider lacks a setting (API key, base URL or model) in `.env`."""

    refusal = True


class ProviderAuthError(ProviderError):
    """The provider rejected the API key (HTTP 401 or 403)."""

    refusal = True


class ProviderRequestError(ProviderError):
    """The provider refused the request itself (HTTP 400 or 404: wrong model or URL)."""

    refusal = True


class ProviderAnswerError(ProviderError):
    """The provider answered, but not in the shape asked for (a helper's text that is XML, not a description)."""


class ProviderRateLimited(ProviderError):
    """The provider asked us to slow down (HTTP 429)."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the time allowed."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or failed on its side (connection error, HTTP 5xx)."""
