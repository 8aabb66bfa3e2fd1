"""A TCP proxy between a browser and the app: it counts the bytes each way and can cap the uplink.

    with Uplink(app_port, up_bits_per_s=5e6) as link:     # None: count only, no cap
        page.goto(f"http://127.0.0.1:{link.port}/")
        ...
        link.up_bytes                                     # browser → server, every byte on the wire

The cap is a token bucket shared by every connection in the browser → server direction, as
one phone's radio link is shared by its page load, its websocket and its uploads; the other
direction is not limited. It counts what crosses TCP: HTTP headers, multipart boundaries and
websocket framing included, and websocket messages as sent, i.e. after permessage-deflate.
The proxy runs its own event loop on a thread, so a busy caller does not slow the link.
"""

from __future__ import annotations

import asyncio
import threading
import time

CHUNK = 16 * 1024
BURST = 16 * 1024  # bytes the bucket may hold: a small burst, so a 60 KB message pays for nearly all of itself


class TokenBucket:
    """`rate` bytes a second, at most `burst` saved up; `take(n)` waits until n bytes may pass."""

    def __init__(self, rate: float, burst: int = BURST) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, n: int) -> None:
        """Wait until `n` bytes fit the rate; callers are served in turn (the lock), as packets queue on a link."""
        async with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= n
            if self._tokens < 0:
                # In debt: wait until the debt is paid, so the average rate never exceeds `rate`.
                await asyncio.sleep(-self._tokens / self.rate)
                self._tokens, self._at = 0.0, time.monotonic()


class Uplink:
    """The proxy on a free port of 127.0.0.1, forwarding to `target_port`; a context manager."""

    def __init__(self, target_port: int, *, up_bits_per_s: float | None = None, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.host = host
        self.up_bits_per_s = up_bits_per_s
        self.up_bytes = 0      # browser → server
        self.down_bytes = 0    # server → browser
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._bucket: TokenBucket | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task] = set()

    def set_rate(self, up_bits_per_s: float | None) -> None:
        """Change the cap (None: none) for the bytes forwarded from now on."""
        self.up_bits_per_s = up_bits_per_s
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._new_bucket)

    def _new_bucket(self) -> None:
        self._bucket = TokenBucket(self.up_bits_per_s / 8) if self.up_bits_per_s else None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> Uplink:
        """Listen and forward on a background thread; returns once the port is known."""
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError("the uplink proxy did not start")
        return self

    def stop(self) -> None:
        """Close the listener and every open connection; join the thread."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(self._shutdown)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Uplink:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop))
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        self._done = loop.create_future()
        self._new_bucket()
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._loop = loop
        self._ready.set()
        await self._done
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _shutdown(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    # -- forwarding -----------------------------------------------------------------------------

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._pipe(client_reader, server_writer, up=True),
                                 self._pipe(server_reader, client_writer, up=False))
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool) -> None:
        try:
            while data := await reader.read(CHUNK):
                if up and self._bucket is not None:
                    await self._bucket.take(len(data))
                writer.write(data)
                await writer.drain()
                if up:
                    self.up_bytes += len(data)
                else:
                    self.down_bytes += len(data)
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass
