"""A real HTTP server that speaks OpenAI's chat-completions protocol, for tests.

    with FakeLLM() as llm:
        llm.script(Reply(status=429, headers={"Retry-After": "0.3"}), Reply(VALID))
        ...  # point RUNPOD_BASE_URL / OPENAI_BASE_URL at llm.url
        assert llm.requests[0].body["model"] == "clinic-derm-v1"

It listens on 127.0.0.1 on a free port and answers POST .../chat/completions under any
prefix (`/v1/chat/completions`, RunPod's `/v2/<id>/openai/v1/chat/completions`), streamed
as server-sent events (chunked, keep-alive) or as one JSON body, as the request asks.
Scripted replies are used in order, then `responder(request)` if set, else `default`
(a valid contract answer) forever.

Standalone, for end-to-end tests that start the app as a subprocess:

    python -m testkit.fake_llm --port 8765      # prints its URL, serves the default answer
"""

from __future__ import annotations

import argparse
import itertools
import json
import select
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from testkit.answers import BENIGN, VALID

__all__ = ["FakeLLM", "Reply", "RecordedRequest", "Headers", "closed_port_url"]

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
    def error(cls, status: int, message: str | None = None, **kwargs) -> "Reply":
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: "FakeLLM", address: tuple[str, int]) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def drop_connections(self) -> None:
        with self._conn_lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer (a cancelled call) is normal here, not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or self.stopping.is_set():
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "FakeLLM/1.0"
    # Each streamed event is its own small write: with Nagle's algorithm on, delayed ACKs stall
    # some of them by 40 ms on loopback. Real servers (uvicorn under vLLM, nginx) switch it off.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet in tests
        pass

    # -- routing ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path.endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]})
        else:
            self._json(404, Reply.error(404, f"No route for GET {path}").body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path
        fake = self.server.fake
        recorded = RecordedRequest(method="POST", path=path, headers=Headers(self.headers.items()), body=body,
                                   raw=raw, at=time.monotonic(), client=tuple(self.client_address))
        fake._record(recorded)
        if not path.rstrip("/").endswith("/chat/completions"):
            self._json(404, Reply.error(404, f"No route for POST {path}").body)
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._json(400, Reply.error(400, "The body must be JSON with a 'messages' list.").body)
            return
        self._answer(fake._next_reply(recorded), body)

    # -- answering --------------------------------------------------------------------------

    def _client_gone(self, seconds: float) -> bool:
        """Wait up to `seconds` (forever if None); True as soon as the client hangs up or the server stops.

        A cancelled call closes its connection: seeing that is how tests know a loser was cancelled.
        """
        end = None if seconds is None else time.monotonic() + seconds
        while not self.server.stopping.is_set():
            left = 0.05 if end is None else min(0.05, end - time.monotonic())
            if left <= 0:
                return False
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        self.server.fake._hung_up()
                        return True
                except OSError:
                    self.server.fake._hung_up()
                    return True
                time.sleep(left)  # pipelined bytes, not a hang-up: keep waiting
        return True

    def _answer(self, reply: Reply, request: dict) -> None:
        if reply.hang:
            self._client_gone(None)
            self.close_connection = True
            return
        if reply.delay and self._client_gone(reply.delay):
            self.close_connection = True
            return
        if reply.status != 200:
            body = reply.body if reply.body is not None else Reply.error(reply.status).body
            self._json(reply.status, body, reply.headers)
            return
        streamed = bool(request.get("stream")) if reply.stream is None else reply.stream
        if streamed:
            self._stream(reply, request)
        else:
            self._completion(reply, request)

    def _json(self, status: int, body: dict, headers: Mapping | None = None, *, cut_after: int | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        if cut_after is not None:
            self.wfile.write(data[:cut_after])
            self._hang_up()
            return
        self.wfile.write(data)

    def _completion(self, reply: Reply, request: dict) -> None:
        prompt, completion = reply.usage
        body = {
            "id": f"chatcmpl-fake{self.server.fake._next_id()}", "object": "chat.completion",
            "created": int(time.time()), "model": request.get("model") or "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                         "logprobs": None, "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }
        # cut_after counts characters of the answer; cut the body somewhere inside the content.
        cut = None
        if reply.cut_after is not None:
            data = json.dumps(body, ensure_ascii=False)
            cut = len(data[:data.index('"content"') + 12 + reply.cut_after].encode("utf-8"))
        self._json(200, body, reply.headers, cut_after=cut)

    def _stream(self, reply: Reply, request: dict) -> None:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        chunk_id = f"chatcmpl-fake{self.server.fake._next_id()}"
        created, model = int(time.time()), request.get("model") or "fake-model"

        def event(choices: list, usage: dict | None = None) -> dict:
            data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": None, "choices": choices}
            if include_usage:
                data["usage"] = usage
            return data

        def delta(d: dict, finish: str | None = None) -> dict:
            return event([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, str(value))
        self.end_headers()

        content = reply.content if reply.cut_after is None else reply.content[:reply.cut_after]
        size = max(1, reply.chunk_chars)
        self._send_event(delta({"role": "assistant", "content": ""}))
        for start in range(0, len(content), size):
            if reply.chunk_delay and self._client_gone(reply.chunk_delay):
                self._hang_up()
                return
            try:
                self._send_event(delta({"content": content[start:start + size]}))
            except OSError:
                self.server.fake._hung_up()
                raise
        if reply.cut_after is not None:
            self._hang_up()
            return
        self._send_event(delta({}, reply.finish_reason))
        if include_usage:
            prompt, completion = reply.usage
            self._send_event(event([], {"prompt_tokens": prompt, "completion_tokens": completion,
                                        "total_tokens": prompt + completion}))
        self._send_chunk(b"data: [DONE]\n\n")
        self._send_chunk(b"")  # the terminating zero-length chunk

    def _send_event(self, data: dict) -> None:
        self._send_chunk(b"data: " + json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n\n")

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _hang_up(self) -> None:
        """Close the connection mid-body, as a crashed worker or a dropped proxy does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FakeLLM:
    """The fake server: start it (or use it as a context manager), script replies, read requests."""

    def __init__(self, default: Reply | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.default = default or Reply(VALID)
        # Optional: builds the reply from the request once the script is used up (None: use `default`).
        self.responder: Callable[[RecordedRequest], Reply | str | None] | None = None
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self.hangups = 0  # connections the client closed before the answer was complete
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> "FakeLLM":
        if self._server is None:
            self._server = _Server(self, (self._host, self._port))
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="fake-llm", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and delayed replies end, open connections are closed."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeLLM is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://{self._host}:{self.port}/v1"

    # -- scripting and inspecting -----------------------------------------------------------

    def script(self, *replies: Reply | str) -> "FakeLLM":
        """Queue replies (a str is shorthand for `Reply(str)`), used in order before `default`."""
        with self._lock:
            self._queue.extend(Reply(r) if isinstance(r, str) else r for r in replies)
        return self

    @property
    def pending(self) -> int:
        """Scripted replies not yet used."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order of arrival (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The chat-completions requests only."""
        return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    def clear(self) -> None:
        """Forget recorded requests and scripted replies."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; raises TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self._requests)}")
            return list(self._requests)

    # -- used by the handler ----------------------------------------------------------------

    def _hung_up(self) -> None:
        with self._lock:
            self.hangups += 1

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            responder, default = self.responder, self.default
        reply = responder(request) if responder else None
        reply = Reply(reply) if isinstance(reply, str) else reply
        return reply or default

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)


def closed_port_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m testkit.fake_llm",
                                     description="Serve a fake OpenAI-compatible chat-completions endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--answer", choices=("valid", "benign"), default="valid")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between streamed chunks")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer starts")
    args = parser.parse_args(argv)
    default = Reply(VALID if args.answer == "valid" else BENIGN, chunk_delay=args.chunk_delay, delay=args.delay)
    fake = FakeLLM(default, host=args.host, port=args.port).start()
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
