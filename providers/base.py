"""One OpenAI-compatible provider: how it is configured and how one attempt is made.

Every call goes through langchain-openai's ChatOpenAI with the SDK's own retries
off: retrying is the engine's job alone, so timeouts never multiply.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import functools
import ssl
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, cast
from urllib.parse import urlsplit

from domain.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderTimeout,
    ProviderUnavailable,
)
from domain.messages import Message, listed
from domain.result import Usage
from utils.settings import Settings

if TYPE_CHECKING:  # langchain-openai, openai and httpx2 take about a second to import: only a provider call does
    from langchain_core.messages import AIMessageChunk
    from langchain_openai import ChatOpenAI


def load_sdk() -> None:
    """Import langchain-openai and the openai SDK now (a server's start), not at the first provider call.

    That import takes a second or more and would block the provider loop, and every assessment on
    it, while it runs; the command line and cache hits never call this and never pay for it.
    """
    import langchain_openai  # noqa: F401
    import openai  # noqa: F401


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context every provider's HTTP client verifies servers with (the system's trusted certificates)."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class Attempt:
    """What one successful call returned."""

    raw: str
    usage: Usage
    # The answer's byte cap when the provider sent more (the rest was not read, the stream closed); else None.
    cut_off_at: int | None = None


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
            raise ProviderNotConfigured(self.not_configured(), provider=self.name)

    def not_configured(self, others: list[str] | None = None) -> Message:
        """'<title> is not configured: set <missing variables> in .env.', and which providers are (`others`)."""
        variables = listed(self.missing())
        if others:
            return Message("provider.not_configured_others",
                           {"title": self.title, "variables": variables, "others": ", ".join(others)})
        return Message("provider.not_configured", {"title": self.title, "variables": variables})

    @property
    def host(self) -> str:
        """The endpoint's host and port, for messages (never the key, the path, or a `user:password@` in the URL)."""
        return urlsplit(self.base_url).netloc.rpartition("@")[2] or "api.openai.com"

    async def aclose(self) -> None:
        """Close the provider's HTTP connections (when the engine is replaced)."""
        if self._llm is not None and self._llm.http_async_client is not None:
            await self._llm.http_async_client.aclose()
        self._llm = None

    def _chat(self) -> ChatOpenAI:
        # Built on first use, inside the engine's event loop, and reused so connections are kept alive.
        if self._llm is None:
            # The SDK's own HTTP library (openai 3 is built on httpx2), imported here, not at the top: a cache hit
            # or a start-up must not pay for the SDK's import. Not classic httpx: its connection pool rescans
            # every connection on every request and release, which at 200 streams in flight cost more CPU
            # than the rest of the app (bench/RESULTS.md, "hundreds of clients").
            import httpx2
            from langchain_openai import ChatOpenAI
            from pydantic import SecretStr

            s = self.settings
            # Room for every API slot and its hedge: with fewer, calls queue for a connection inside the pool.
            connections = max(64, 2 * s.api_max_concurrent)
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
                # Our own clients, on one TLS context for the process: loading the system's certificates for each
                # new client took 40 ms, on the provider loop, holding up every other call's timers (hedges).
                http_socket_options=(),
                http_client=httpx2.Client(timeout=s.request_timeout, verify=tls_context()),
                http_async_client=httpx2.AsyncClient(
                    timeout=s.request_timeout, verify=tls_context(),
                    limits=httpx2.Limits(max_connections=connections, max_keepalive_connections=connections // 4)),
            )
        return self._llm

    async def complete(self, messages: list[dict], *, stream: bool,
                       on_text: Callable[[str], None] | None = None) -> Attempt:
        """Make one call; with `stream`, `on_text` receives the answer so far as it grows.

        Raises a `ProviderError` subclass that says what happened and whether a retry may help.
        """
        self.require_configured()
        limit = self.settings.answer_max_bytes
        try:
            if not stream:
                # The SDK reads the JSON body whole; what is kept, parsed, stored and shown is bounded here.
                message = await self._chat().ainvoke(messages)
                raw, cut = _bounded(_text(message.content), limit)
                return Attempt(raw, _usage(message), cut_off_at=limit if cut else None)
            text = ""
            size = 0
            usage = Usage()
            # aclosing: leaving the loop early closes the generators down to the HTTP response, so a runaway
            # answer's connection is dropped at once instead of being read to its end.
            # Typed as an iterator, it is an async generator (it has aclose).
            stream_of = cast("AsyncGenerator[AIMessageChunk, None]", self._chat().astream(messages))
            async with contextlib.aclosing(stream_of) as chunks:
                async for chunk in chunks:
                    if chunk.content:
                        piece = _text(chunk.content)
                        size += len(piece.encode("utf-8", "surrogatepass"))
                        if size > limit:
                            text, _ = _bounded(text + piece, limit)
                            if on_text:
                                on_text(text)
                            return Attempt(text, usage, cut_off_at=limit)
                        text += piece
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
        import httpx2
        import openai

        t, p = self.title, self.name
        if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException, TimeoutError)):
            return ProviderTimeout(Message("provider.timeout", {"title": t}), provider=p, retryable=True)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in (401, 403):
                message = (Message("provider.auth", {"title": t, "status": status, "variable": self.key_var})
                           if self.key_var else Message("provider.auth_server", {"title": t, "status": status}))
                return ProviderAuthError(message, provider=p)
            if status == 404:
                variables = listed([self.model_var, self.url_var] if self.url_var else [self.model_var])
                return ProviderRequestError(Message("provider.unknown_model",
                                                    {"title": t, "model": self.model, "variables": variables}),
                                            provider=p)
            if status == 429:
                return ProviderRateLimited(Message("provider.rate_limited", {"title": t}), provider=p,
                                           retryable=True, retry_after=retry_after(exc.response))
            if status in (408, 409) or status >= 500:
                return ProviderUnavailable(Message("provider.failed", {"title": t, "status": status}), provider=p,
                                           retryable=True, retry_after=retry_after(exc.response))
            return ProviderRequestError(Message("provider.refused", {"title": t, "status": status}), provider=p)
        if _connection_dropped(exc):
            return ProviderUnavailable(Message("provider.dropped", {"title": t}), provider=p, retryable=True)
        if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError, ConnectionError)):
            message = (Message("provider.unreachable", {"title": t, "host": self.host, "variable": self.url_var})
                       if self.url_var else Message("provider.unreachable_url", {"title": t, "host": self.host}))
            return ProviderUnavailable(message, provider=p, retryable=True)
        return ProviderUnavailable(Message("provider.unreadable", {"title": t, "error": type(exc).__name__}),
                                   provider=p, retryable=True)

def _connection_dropped(exc: BaseException) -> bool:
    # The SDK wraps a stream cut mid-answer as a connection error; the server *was* reached.
    import httpx2

    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, (httpx2.RemoteProtocolError, httpx2.ReadError)):
            return True
        link = link.__cause__ or link.__context__
    return False


class _WithHeaders(Protocol):
    # An HTTP response of httpx2 (the openai SDK's errors carry one) or httpx: only the headers are read.
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


def _bounded(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to at most `limit` bytes of UTF-8 (never inside a character), and whether it was cut."""
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore"), True


def _text(content) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def _usage(message) -> Usage:
    meta = getattr(message, "usage_metadata", None) or {}
    return Usage(prompt_tokens=int(meta.get("input_tokens", 0) or 0),
                 completion_tokens=int(meta.get("output_tokens", 0) or 0))
