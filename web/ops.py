"""Operators' endpoints: liveness for a load balancer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers HTTP. No auth, no I/O, so a busy provider never fails it."""
    return JSONResponse({"status": "ok"})


def routes() -> list[BaseRoute]:
    """The operators' routes."""
    return [Route("/healthz", healthz, methods=["GET"])]
