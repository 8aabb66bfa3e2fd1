"""HTTP/1.1 on one client socket, as far as an OpenAI-compatible server needs it.

Keep-alive, chunked request bodies, JSON responses and server-sent events over chunked
transfer encoding, plus OpenAI-style error bodies. Nothing here knows what is being
simulated.
"""

from __future__ import annotations

import asyncio
import http
import json
import math
from dataclasses import dataclass


class HttpError(Exception):
    """A request that cannot be read; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    """One request as read off the socket."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class Connection:
    """One client connection: reads requests, writes responses, notices when the client leaves.

    Writes after the client left are dropped silently, so a job that outlives its client
    (cancel_on_disconnect False) can run to its end without caring.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.leftover = b""              # a byte read while watching for a hang-up (a pipelined request)
        self.gone = False
        self.gone_event = asyncio.Event()
        self.head_sent = False

    async def read_request(self) -> Request | None:
        """The next request, or None when the client closed the connection between requests."""
        try:
            head = self.leftover + await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if (self.leftover + exc.partial).strip():
                raise HttpError(400, "Incomplete request head.") from None
            return None
        except asyncio.LimitOverrunError:
            raise HttpError(431, "Request head too large.") from None
        self.leftover = b""
        lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            raise HttpError(400, "Malformed request line.") from None
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked()
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                raise HttpError(400, "Bad Content-Length.") from None
            body = await self.reader.readexactly(length) if length > 0 else b""
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
        self.head_sent = False
        return Request(method.upper(), target, headers, body, keep)

    async def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise HttpError(400, "Bad chunk size.") from None
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def wait_gone(self) -> bytes:
        """Wait for the client to hang up (b"") or, rarely, to pipeline its next request (one byte)."""
        try:
            return await self.reader.read(1)
        except ConnectionError:
            return b""

    def mark_gone(self) -> None:
        """The client left: later writes are dropped and anyone waiting on `gone_event` wakes."""
        self.gone = True
        self.gone_event.set()

    def write(self, data: bytes) -> None:
        """Buffer `data` for the client, unless it has left."""
        if not self.gone and not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        """Wait for the buffered bytes to go out; a broken pipe marks the client gone."""
        if self.gone:
            return
        try:
            await self.writer.drain()
        except ConnectionError:
            self.mark_gone()

    def write_head(self, status: int, headers: dict[str, str]) -> None:
        """The status line and headers."""
        lines = [f"HTTP/1.1 {status} {_reason(status)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.head_sent = True

    async def respond_json(self, status: int, body: dict, *, keep: bool, headers: dict | None = None) -> None:
        """A whole JSON response, sent."""
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.write_head(status, {"content-type": "application/json", "content-length": str(len(data)),
                                 "connection": "keep-alive" if keep else "close", **(headers or {})})
        self.write(data)
        await self.drain()

    def start_stream(self, *, keep: bool, headers: dict | None = None) -> None:
        """The head of a 200 server-sent-events response; events follow as chunks."""
        self.write_head(200, {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
                              "transfer-encoding": "chunked", "connection": "keep-alive" if keep else "close",
                              **(headers or {})})

    def send_event(self, data: dict | str) -> None:
        """One server-sent event (`data: ...`) in a chunk of its own; a str is sent as it is ([DONE])."""
        payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        chunk = b"data: " + payload.encode("utf-8") + b"\n\n"
        self.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def end_stream(self) -> None:
        """The terminating zero-length chunk."""
        self.write(b"0\r\n\r\n")


_ERROR_KINDS = {
    400: ("invalid_request_error", None), 404: ("invalid_request_error", "not_found"),
    429: ("requests", "rate_limit_exceeded"), 431: ("invalid_request_error", None),
    500: ("server_error", None), 503: ("server_error", None), 504: ("timeout", None),
}


def error_body(status: int, message: str) -> dict:
    """OpenAI's error JSON for `status`."""
    kind, code = _ERROR_KINDS.get(status, ("server_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def retry_after_seconds(value: float) -> str:
    """Seconds for a Retry-After header: fractional (non-standard) because time is scaled."""
    return f"{math.ceil(value * 1000) / 1000:g}"
