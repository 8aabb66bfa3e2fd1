"""The fake's HTTP side: a threading server that tracks its sockets, and the request handler.

The handler routes, waits (delays, hangs, slow chunks) while watching for the client to
hang up, and cuts connections as a crashed worker would. What it sends comes from
`wire`; which reply to send, and where to record each request, it is handed in.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from testkit.fake_llm import wire
from testkit.fake_llm.replies import Headers, RecordedRequest, Reply


class ChatServer(ThreadingHTTPServer):
    """A thread per connection; remembers its open sockets so `drop_connections` can cut them all.

    `record` gets every request as it arrives, `next_reply` picks the reply to a chat request,
    `hung_up` hears of each client that left before its answer was complete, and `next_id`
    numbers the completions.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the listen backlog: socketserver's 5 drops a burst of connections (SYN retried 1 s on)

    def __init__(self, address: tuple[str, int], *, record: Callable[[RecordedRequest], None],
                 next_reply: Callable[[RecordedRequest], Reply], hung_up: Callable[[], None],
                 next_id: Callable[[], int]) -> None:
        self.record, self.next_reply, self.hung_up, self.next_id = record, next_reply, hung_up, next_id
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, ChatHandler)

    def track(self, conn: socket.socket, add: bool) -> None:
        """Remember (`add`) or forget an open connection."""
        with self._conn_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def drop_connections(self) -> None:
        """Shut every open connection down, so handlers blocked on them end."""
        with self._conn_lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-answer (a cancelled call) is normal here, not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or self.stopping.is_set():
            return
        super().handle_error(request, client_address)


class ChatHandler(BaseHTTPRequestHandler):
    """Answers one connection's requests: GET .../models, POST .../chat/completions."""

    protocol_version = "HTTP/1.1"
    server: ChatServer
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
        """The model list, for clients that look before they call."""
        path = urlsplit(self.path).path.rstrip("/")
        if path.endswith("/models"):
            self._json(200, {"object": "list", "data": [
                {"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]})
        else:
            self._json(404, Reply.error(404, f"No route for GET {path}").body)

    def do_POST(self) -> None:
        """Record the request, then answer a chat completion as the next reply says."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(self.path).path
        recorded = RecordedRequest(method="POST", path=path, headers=Headers(self.headers.items()), body=body,
                                   raw=raw, at=time.monotonic(), client=tuple(self.client_address))
        self.server.record(recorded)
        if not path.rstrip("/").endswith("/chat/completions"):
            self._json(404, Reply.error(404, f"No route for POST {path}").body)
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._json(400, Reply.error(400, "The body must be JSON with a 'messages' list.").body)
            return
        self._answer(self.server.next_reply(recorded), body)

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
                        self.server.hung_up()
                        return True
                except OSError:
                    self.server.hung_up()
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
        body = wire.completion_body(reply, request, f"chatcmpl-fake{self.server.next_id()}")
        # cut_after counts characters of the answer; cut the body somewhere inside the content.
        cut = None if reply.cut_after is None else wire.cut_inside_content(body, reply.cut_after)
        self._json(200, body, reply.headers, cut_after=cut)

    def _stream(self, reply: Reply, request: dict) -> None:
        chunks = wire.StreamChunks(request, f"chatcmpl-fake{self.server.next_id()}")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, str(value))
        self.end_headers()

        content = reply.content if reply.cut_after is None else reply.content[:reply.cut_after]
        size = max(1, reply.chunk_chars)
        self._send_event(chunks.delta({"role": "assistant", "content": ""}))
        for start in range(0, len(content), size):
            if reply.chunk_delay and self._client_gone(reply.chunk_delay):
                self._hang_up()
                return
            try:
                self._send_event(chunks.delta({"content": content[start:start + size]}))
            except OSError:
                self.server.hung_up()
                raise
        if reply.cut_after is not None:
            self._hang_up()
            return
        self._send_event(chunks.delta({}, reply.finish_reason))
        if chunks.include_usage:
            self._send_event(chunks.event([], wire.usage(reply)))
        self._send_chunk(wire.DONE)
        self._send_chunk(b"")  # the terminating zero-length chunk

    def _send_event(self, data: dict) -> None:
        self._send_chunk(wire.sse(data))

    def _send_chunk(self, data: bytes) -> None:
        self.wfile.write(wire.http_chunk(data))
        self.wfile.flush()

    def _hang_up(self) -> None:
        """Close the connection mid-body, as a crashed worker or a dropped proxy does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

