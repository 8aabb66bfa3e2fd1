"""One OpenAI-compatible provider: how it is configured and how one attempt is made.

Every call goes through langchain-openai's ChatOpenAI with the SDK's own retries
off: retrying is the engine's job alone, so timeouts never multiply.
"""

from __future__ import annotations

import datetime
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol
from urllib.parse import urlsplit

import httpx
import openai
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from domain.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderTimeout,
    ProviderUnavailable,
)
from domain.result import Usage
from utils.settings import Settings


@dataclass(frozen=True)
class Attempt:
    """What one successful call returned."""

    raw: str
    usage: Usage


class Provider:
    """An OpenAI-compatible chat-completions endpoint; subclasses say where its settings live."""

    name: ClassVar[str]
    title: ClassVar[str]
    key_var: ClassVar[str | None]
    url_var: ClassVar[str | None]
    model_var: ClassVar[str]
    key_required: ClassVar[bool] = True
    # Scales to zero between requests (RunPod serverless): worth waking before the clinician asks.
    serverless: ClassVar[bool] = False
    # The engine is the one retry layer. Only the benchmark's replay of the original backend,
    # which nested its own retries around the SDK's, sets this.
    sdk_max_retries: ClassVar[int] = 0
    # llama.cpp and older vLLM ignore max_completion_tokens and run to the context's end.
    sends_max_tokens: ClassVar[bool] = True

    def __init__(self, settings: Settings, *, api_key: str, base_url: str, model: str,
                 accepts_images: bool = True) -> None:
        self.settings = settings
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.accepts_images = accepts_images
        self._llm: ChatOpenAI | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Provider:
        """Build the provider from `settings`; a missing value leaves it unconfigured, never raises."""
        raise NotImplementedError

    def missing(self) -> list[str]:
        """Names of the `.env` variables that still need a value before this provider can answer."""
        needed = []
        if self.key_required and self.key_var and not self.api_key:
            needed.append(self.key_var)
        if self.url_var and not self.base_url and self.name != "openai":
            needed.append(self.url_var)
        if not self.model:
            needed.append(self.model_var)
        return needed

    @property
    def configured(self) -> bool:
        """True when every setting the provider needs is present."""
        return not self.missing()

    def setup_hint(self) -> str:
        """How to configure the provider, e.g. 'set OPENAI_API_KEY in .env'."""
        missing = self.missing()
        return f"set {' and '.join(missing)} in .env" if missing else "configured"

    def require_configured(self) -> None:
        """Raise `ProviderNotConfigured` naming the missing variables."""
        if not self.configured:
            raise ProviderNotConfigured(f"{self.title} is not configured: {self.setup_hint()}.", provider=self.name)

    @property
    def host(self) -> str:
        """The endpoint's host, for messages (never the key or the path's secrets)."""
        return urlsplit(self.base_url).netloc or "api.openai.com"

    async def aclose(self) -> None:
        """Close the provider's HTTP connections (when the engine is replaced)."""
        if self._llm is not None and self._llm.http_async_client is not None:
            await self._llm.http_async_client.aclose()
        self._llm = None

    def _chat(self) -> ChatOpenAI:
        # Built on first use, inside the engine's event loop, and reused so connections are kept alive.
        if self._llm is None:
            s = self.settings
            extra = {"max_tokens": s.max_tokens} if self.sends_max_tokens else None
            self._llm = ChatOpenAI(
                model=self.model,
                api_key=SecretStr(self.api_key or "not-needed"),
                base_url=self.base_url or None,
                temperature=s.temperature,
                max_completion_tokens=s.max_tokens,  # the `max_tokens` field, by its alias
                timeout=s.request_timeout,
                max_retries=self.sdk_max_retries,
                stream_usage=True,
                extra_body=extra,
                # Our own async client is used; no socket options on the unused sync one (and no warning).
                http_socket_options=(),
                http_async_client=httpx.AsyncClient(
                    timeout=s.request_timeout, limits=httpx.Limits(max_connections=64, max_keepalive_connections=16)),
            )
        return self._llm

    async def complete(self, messages: list[dict], *, stream: bool,
                       on_text: Callable[[str], None] | None = None) -> Attempt:
        """Make one call; with `stream`, `on_text` receives the answer so far as it grows.

        Raises a `ProviderError` subclass that says what happened and whether a retry may help.
        """
        self.require_configured()
        try:
            if not stream:
                message = await self._chat().ainvoke(messages)
                return Attempt(_text(message.content), _usage(message))
            text = ""
            usage = Usage()
            async for chunk in self._chat().astream(messages):
                if chunk.content:
                    text += _text(chunk.content)
                    if on_text:
                        on_text(text)
                if getattr(chunk, "usage_metadata", None):
                    usage = _usage(chunk)
            return Attempt(text, usage)
        except ProviderError:
            raise
        except Exception as exc:  # every SDK and transport error becomes one of ours
            raise self.error_from(exc) from None

    async def ping(self) -> None:
        """The smallest possible request (one output token): wakes a cold worker, proves the provider is up.

        Raises a `ProviderError` subclass like `complete`.
        """
        self.require_configured()
        try:
            await self._chat().ainvoke([{"role": "user", "content": "ping"}], max_tokens=1,
                                       extra_body={"max_tokens": 1} if self.sends_max_tokens else None)
        except ProviderError:
            raise
        except Exception as exc:
            raise self.error_from(exc) from None

    def error_from(self, exc: BaseException) -> ProviderError:
        """Turn an SDK or transport exception into our error with a message that says what to do."""
        t, p = self.title, self.name
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)):
            return ProviderTimeout(f"{t} did not answer in time.", provider=p, retryable=True)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in (401, 403):
                hint = f"check {self.key_var} in .env" if self.key_var else "check the server's access settings"
                return ProviderAuthError(f"{t} rejected the API key (HTTP {status}): {hint}.", provider=p)
            if status == 404:
                return ProviderRequestError(
                    f"{t} does not know model '{self.model}' or the URL is wrong (HTTP 404): "
                    f"check {self.model_var}" + (f" and {self.url_var}" if self.url_var else "") + " in .env.",
                    provider=p)
            if status == 429:
                return ProviderRateLimited(f"{t} is rate limiting requests (HTTP 429).", provider=p,
                                           retryable=True, retry_after=retry_after(exc.response))
            if status in (408, 409) or status >= 500:
                return ProviderUnavailable(f"{t} failed on its side (HTTP {status}).", provider=p,
                                           retryable=True, retry_after=retry_after(exc.response))
            return ProviderRequestError(f"{t} refused the request (HTTP {status}).", provider=p)
        if _connection_dropped(exc):
            return ProviderUnavailable(f"{t} dropped the connection in the middle of its answer.",
                                       provider=p, retryable=True)
        if isinstance(exc, (openai.APIConnectionError, httpx.TransportError, ConnectionError)):
            return ProviderUnavailable(f"Could not reach {t} at {self.host}: is it running and is "
                                       f"{self.url_var or 'the URL'} right?", provider=p, retryable=True)
        return ProviderUnavailable(f"{t} answered in a way the app could not read ({type(exc).__name__}).",
                                   provider=p, retryable=True)


def _connection_dropped(exc: BaseException) -> bool:
    # The SDK wraps a stream cut mid-answer as a connection error; the server *was* reached.
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, (httpx.RemoteProtocolError, httpx.ReadError)):
            return True
        link = link.__cause__ or link.__context__
    return False


class _WithHeaders(Protocol):
    # An HTTP response of httpx or of httpx2 (the openai SDK's errors carry the latter): only the headers are read.
    @property
    def headers(self) -> Mapping[str, str]: ...


def retry_after(response: _WithHeaders | None) -> float | None:
    """Seconds the server asked us to wait (Retry-After, in seconds or as a date; retry-after-ms)."""
    if response is None:
        return None
    headers = response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date; parsedate_to_datetime raises on anything else ("soon", "")
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000" means UTC, not the local time zone
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return max(0.0, parsed.timestamp() - time.time())


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _usage(message) -> Usage:
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(prompt_tokens=int(meta.get("input_tokens", 0) or 0),
                 completion_tokens=int(meta.get("output_tokens", 0) or 0))
