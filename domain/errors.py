"""The few exceptions the engine raises; each message says what to do about it.

Each carries a `Message` (domain/messages.py): an id and its values, so the UI says it in the
clinician's language, while `str(exc)` is the English text the command line, the HTTP API and
the logs show. Messages never carry an API key, patient text or image bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.messages import Message, Value


class DiagnosisError(Exception):
    """Base of every error `diagnose` raises on purpose.

    Built from a `Message` (every error the app raises) or, for callers outside the app, a plain string;
    `code` and `params` are then empty and the string is all there is to show.
    """

    def __init__(self, message: Message | str) -> None:
        """`message`: what to tell the clinician (its English text becomes `str(exc)`)."""
        super().__init__(str(message))
        self.message: Message | None = message if isinstance(message, Message) else None

    @property
    def code(self) -> str:
        """The message id ('' for an error built from a plain string)."""
        return self.message.code if self.message else ""

    @property
    def params(self) -> Mapping[str, Value]:
        """The message's values (plain str, int and float)."""
        return self.message.params if self.message else {}


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


class ProviderRateLimited(ProviderError):
    """The provider asked us to slow down (HTTP 429)."""


class ProviderTimeout(ProviderError):
    """The provider did not answer within the time allowed."""


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or failed on its side (connection error, HTTP 5xx)."""
