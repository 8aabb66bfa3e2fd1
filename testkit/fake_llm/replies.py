"""What a test scripts and what it reads back: `Reply`, and `RecordedRequest` with its `Headers`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

# What OpenAI sends for the common statuses: (message, type, code).
_ERRORS = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "invalid_request_error", "forbidden"),
    404: ("The model does not exist or you do not have access to it.", "invalid_request_error",
          "model_not_found"),
    408: ("Request timed out.", "timeout", None),
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


@dataclass
class Reply:
    """How the server answers one chat-completions request."""

    content: str = ""                     # the assistant's text
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: dict | None = None              # raw JSON body for a non-200 reply (default: OpenAI-style error)
    delay: float = 0.0                    # seconds before the response starts
    hang: bool = False                    # read the request, never answer (until the server stops)
    chunk_chars: int = 8                  # characters per streamed chunk
    chunk_delay: float = 0.0              # seconds between streamed chunks
    cut_after: int | None = None          # close the connection abruptly after this many characters
    usage: tuple[int, int] = (120, 80)    # (prompt_tokens, completion_tokens)
    stream: bool | None = None            # None: stream exactly when the request asks to
    finish_reason: str = "stop"           # "length" for an answer cut by the token limit

    @classmethod
    def error(cls, status: int, message: str | None = None, **kwargs) -> Reply:
        """An error reply with OpenAI's error body for `status` (message overridable)."""
        default_message, kind, code = _ERRORS.get(status, (f"HTTP {status}", "server_error", None))
        body = {"error": {"message": message or default_message, "type": kind, "param": None, "code": code}}
        return cls(status=status, body=kwargs.pop("body", body), **kwargs)


class Headers(Mapping):
    """Request headers: a read-only mapping with case-insensitive names."""

    def __init__(self, items: Iterator[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, tuple[str, str]] = {k.lower(): (k, v) for k, v in pairs}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self):
        return (k for k, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    headers: Headers
    body: dict | None            # parsed JSON (None when the body was not JSON)
    raw: bytes = field(repr=False)
    at: float                    # time.monotonic() when the body had been read
    client: tuple = ()           # the client's (host, port): one port for requests on one kept-alive connection

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed answer."""
        return bool(self.body and self.body.get("stream"))

    def text(self) -> str:
        """The user turn's text parts joined (handy for asserting on the prompt)."""
        for message in (self.body or {}).get("messages", []):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                return "\n".join(p.get("text", "") for p in content if p.get("type") == "text")
        return ""
