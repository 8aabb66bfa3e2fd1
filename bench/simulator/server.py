"""`Simulator`: the simulated providers on one local HTTP server, on an event loop of its own.

It owns the life cycle (a background thread running asyncio), the routes
(/<provider>/.../chat/completions, /<provider>/v1/models, /_stats), watching each
socket so a client that hangs up is noticed at once, and the metrics. What one
request meets is `chat.ChatCompletions`' business.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from dataclasses import asdict, replace
from urllib.parse import parse_qs, urlsplit

from bench.simulator.capacity import ProviderState, WorkerPool
from bench.simulator.chat import ChatCompletions
from bench.simulator.clock import SimClock
from bench.simulator.connection import Connection, HttpError, Request, error_body
from bench.simulator.profiles import Profile, ServerlessProfile
from bench.simulator.records import RequestRecord, WorkerRecord


class Simulator:
    """Simulated providers on one local HTTP server, each under its own path prefix.

    `start()` runs the server on a background thread with its own event loop and returns
    the base URL of each provider; `stop()` ends it, closing every connection. Metrics
    (`records()`, `workers()`, `stats()`) can be read from any thread at any time.
    """

    def __init__(self, profiles: dict[str, Profile], scale: float = 1.0, seed: int = 0, *,
                 host: str = "127.0.0.1", port: int = 0, min_chunk_interval: float = 0.02) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        for name in profiles:
            if not name or "/" in name or name == "_stats":
                raise ValueError(f"bad provider name {name!r}: it becomes a path segment")
        self.profiles = dict(profiles)
        self.scale, self.seed = scale, seed
        self.host = host
        # Wall seconds between two chunks of one stream at most: what a screen can show anyway.
        self.min_chunk_interval = min_chunk_interval
        self._port = port
        self._providers = {name: ProviderState(name, p) for name, p in profiles.items()}
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._workers: list[WorkerRecord] = []
        self._ids = itertools.count(1)
        self._clock = SimClock(scale)
        self._completions = ChatCompletions(self._clock, seed, min_chunk_interval)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        """Serve on a background thread; returns {provider: base URL}. Starting twice is harmless."""
        if self._thread is None:
            _raise_open_file_limit()
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(target=self._run, args=(ready, failure), name="bench-simulator",
                                            daemon=True)
            self._thread.start()
            ready.wait()
            if failure:
                self._thread.join()
                self._thread = None
                raise failure[0]
        return {name: self.url(name) for name in self.profiles}

    def stop(self) -> None:
        """Stop serving: every connection closes, every job and timer ends. Metrics stay readable."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        thread.join(timeout=10)

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port it listens on (the free one picked, if it was asked for port 0)."""
        if self._thread is None:
            raise RuntimeError("the simulator is not running")
        return self._port

    def url(self, name: str) -> str:
        """The OpenAI-style base URL of provider `name`, e.g. http://127.0.0.1:PORT/runpod/v1."""
        if name not in self.profiles:
            raise KeyError(f"no provider {name!r}; known: {', '.join(self.profiles)}")
        return f"http://{self.host}:{self.port}/{name}/v1"

    def now(self) -> float:
        """Simulated seconds since the simulator was created."""
        return self._clock.now()

    # -- metrics ----------------------------------------------------------------------------

    def records(self, provider: str | None = None) -> list[RequestRecord]:
        """A snapshot of the request records (copies), in order of arrival."""
        with self._lock:
            return [replace(r) for r in self._records if provider is None or r.provider == provider]

    def workers(self, provider: str | None = None) -> list[WorkerRecord]:
        """A snapshot of every serverless worker that ran or runs (always-on ones included)."""
        with self._lock:
            return [replace(w) for w in self._workers if provider is None or w.provider == provider]

    def reset_metrics(self) -> None:
        """Forget request records and stopped workers (between benchmark scenarios); live workers stay."""
        with self._lock:
            self._records.clear()
            self._workers[:] = [w for w in self._workers if w.stopped is None]

    def stats(self) -> dict[str, dict]:
        """Per provider: requests and their outcomes, cold starts, workers booted, what the warm-ups cost."""
        now, records, workers = self.now(), self.records(), self.workers()
        out = {}
        for name in self.profiles:
            rs = [r for r in records if r.provider == name]
            ws = [w for w in workers if w.provider == name]
            boots = [w for w in ws if not w.always_on]
            waits = [r.queue_wait for r in rs if r.worker is not None]
            out[name] = {
                "requests": len(rs),
                "in_flight": sum(not r.done for r in rs),
                "outcomes": dict(Counter(r.outcome for r in rs)),
                "statuses": dict(Counter(str(r.status) for r in rs if r.status is not None)),
                "cold_starts": sum(r.cold_start for r in rs),
                "workers_booted": len(boots),
                "workers_live": sum(w.stopped is None for w in ws),
                "boot_seconds": round(sum(w.boot_seconds for w in boots), 3),
                "worker_seconds": round(sum(w.billed_seconds(now) for w in ws), 3),
                "queue_wait_mean": round(sum(waits) / len(waits), 3) if waits else 0.0,
                "queue_wait_max": round(max(waits), 3) if waits else 0.0,
                "prompt_tokens": sum(r.prompt_tokens for r in rs),
                "completion_tokens": sum(r.completion_tokens for r in rs),
            }
        return out

    def _add_worker(self, record: WorkerRecord) -> None:
        with self._lock:
            self._workers.append(record)

    # -- the event loop -----------------------------------------------------------------------

    def _run(self, ready: threading.Event, failure: list) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready, failure))
        finally:
            loop.close()

    async def _serve(self, ready: threading.Event, failure: list) -> None:
        try:
            self._stopping = asyncio.Event()
            for provider in self._providers.values():
                if isinstance(provider.profile, ServerlessProfile):
                    provider.pool = WorkerPool(provider.name, provider.profile, clock=self._clock, seed=self.seed,
                                               on_new_worker=self._add_worker)
            server = await asyncio.start_server(self._on_connection, self.host, self._port, backlog=4096,
                                                limit=1 << 20)
            self._port = server.sockets[0].getsockname()[1]
        except BaseException as exc:  # e.g. the port is taken: report it to start()'s caller
            failure.append(exc)
            ready.set()
            return
        ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            # Connections first (they cancel their jobs), then whatever is left: orphaned jobs, late accepts.
            for tasks in (list(self._tasks), [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]):
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()
            for provider in self._providers.values():
                if provider.pool is not None:
                    provider.pool.close()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        conn = Connection(reader, writer)
        try:
            while not conn.gone:
                try:
                    request = await conn.read_request()
                except HttpError as exc:
                    await conn.respond_json(exc.status, error_body(exc.status, str(exc)), keep=False)
                    break
                if request is None or not await self._route(conn, request):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass   # stop() ends the connection; asyncio.streams would log a cancelled handler as an error
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _route(self, conn: Connection, req: Request) -> bool:
        """Answer one request; returns whether the connection stays open."""
        url = urlsplit(req.target)
        segments = [s for s in url.path.split("/") if s]
        if req.method == "GET" and segments == ["_stats"]:
            body = {"scale": self.scale, "now": self.now(), "providers": self.stats()}
            if parse_qs(url.query).get("records"):
                body["records"] = [asdict(r) for r in self.records()]
            await conn.respond_json(200, body, keep=req.keep_alive)
            return req.keep_alive
        provider = self._providers.get(segments[0]) if segments else None
        if provider is None:
            message = f"No simulated provider at {url.path!r}; known: {', '.join(self.profiles)}."
            await conn.respond_json(404, error_body(404, message), keep=req.keep_alive)
            return req.keep_alive
        path = url.path.rstrip("/")
        if req.method == "POST" and path.endswith("/chat/completions"):
            return await self._serve_chat(conn, provider, req)
        if req.method == "GET" and path.endswith("/models"):
            model = {"id": provider.profile.model, "object": "model", "created": 0, "owned_by": provider.name}
            await conn.respond_json(200, {"object": "list", "data": [model]}, keep=req.keep_alive)
            return req.keep_alive
        await conn.respond_json(404, error_body(404, f"No route for {req.method} {url.path}."), keep=req.keep_alive)
        return req.keep_alive

    async def _serve_chat(self, conn: Connection, provider: ProviderState, req: Request) -> bool:
        """Run the request as a job while watching the socket, so a client that hangs up is noticed at once."""
        record = RequestRecord(id=next(self._ids), provider=provider.name, index=next(provider.count),
                               arrived=self.now(), body_bytes=len(req.body))
        with self._lock:
            self._records.append(record)
        job = asyncio.create_task(self._completions.run(conn, provider, req, record))
        watch = asyncio.create_task(conn.wait_gone())
        try:
            await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:   # the simulator is stopping
            job.cancel()
            watch.cancel()
            await asyncio.gather(job, watch, return_exceptions=True)
            raise
        if not watch.done():
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if watch.done() and not watch.cancelled():
            data = watch.result()
            if data:                        # the next request, pipelined: keep it, let the job finish
                conn.leftover = data
                return await job
            conn.mark_gone()
            if not job.done():
                if provider.profile.cancel_on_disconnect:
                    job.cancel()
                    await asyncio.gather(job, return_exceptions=True)
                else:                       # the job runs on without a listener, holding its slot
                    self._tasks.add(job)
                    job.add_done_callback(self._tasks.discard)
            return False
        return job.result()

def _raise_open_file_limit(target: int = 65536) -> None:
    """Let the process hold thousands of sockets (both ends live here when a benchmark runs in-process)."""
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = target if hard == resource.RLIM_INFINITY else min(target, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass
