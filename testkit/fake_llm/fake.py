"""`FakeLLM`: start the fake server, script its replies, read back what it received."""

from __future__ import annotations

import itertools
import socket
import threading
from collections import deque
from collections.abc import Callable

from testkit.answers import VALID
from testkit.fake_llm.http_handler import ChatServer
from testkit.fake_llm.replies import RecordedRequest, Reply


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
        self._server: ChatServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> FakeLLM:
        """Serve on a background thread (starting twice is harmless); returns self."""
        if self._server is None:
            self._server = ChatServer((self._host, self._port), record=self._record, next_reply=self._next_reply,
                                      hung_up=self._hung_up, next_id=self._next_id)
            # stop() waits up to one poll interval: a short one keeps a fresh fake per test cheap (~5 ms, not ~50).
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.005},
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

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on (the free one picked, if it was asked for port 0)."""
        if self._server is None:
            raise RuntimeError("FakeLLM is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, e.g. http://127.0.0.1:PORT/v1."""
        return f"http://{self._host}:{self.port}/v1"

    # -- scripting and inspecting -----------------------------------------------------------

    def script(self, *replies: Reply | str) -> FakeLLM:
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
