"""Operators' endpoints: liveness and readiness for a load balancer, figures for Prometheus.

- `GET /healthz`: the process answers HTTP (no I/O at all).
- `GET /readyz`: the store takes a write, a configured provider is usable, Redis answers when set
  (web/readiness.py); 200 when this process can answer and record assessments ("ready", or "degraded"
  when an optional part such as Redis is down), else 503. No auth: it names providers and states only.
- `GET /metrics`: Prometheus's text format (engine/prometheus_metrics.py), this process's figures (the audit
  writer's among them: `skinai_audit_events_failed_total` counts events the trail missed);
  with METRICS_TOKEN set, only for `Authorization: Bearer <METRICS_TOKEN>`.
"""

from __future__ import annotations

import hmac

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import startup
from engine.prometheus_metrics import CONTENT_TYPE, PrometheusMetrics, audit_exposition
from utils.settings import Settings, SettingsError, get_settings
from web.api.diagnose import ASSESSMENTS
from web.readiness import readiness

_NO_STORE = {"Cache-Control": "no-store"}


async def healthz(request: Request) -> JSONResponse:
    """Liveness: the process answers HTTP. No auth, no I/O, so a busy provider never fails it."""
    return JSONResponse({"status": "ok"})


def _settings() -> Settings | JSONResponse:
    """The settings, or the 503 that says they cannot be read (the message names the variable, never a value)."""
    try:
        return get_settings()
    except SettingsError:
        return JSONResponse({"error": "settings", "detail": "A setting cannot be used: fix .env (the app's log "
                             "and its start page say which)."}, status_code=503, headers=_NO_STORE)


async def readyz(request: Request) -> JSONResponse:
    """Readiness: 200 when this process can answer and record assessments ("degraded" when an optional part
    fails), 503 when it cannot; each check listed."""
    settings = _settings()
    if isinstance(settings, JSONResponse):
        return settings
    checks = await readiness(settings)
    ready = all(check.ok for check in checks)
    status = ("degraded" if any(c.degraded for c in checks) else "ready") if ready else "not ready"
    return JSONResponse({"status": status, "checks": [c.to_dict() for c in checks]},
                        status_code=200 if ready else 503, headers=_NO_STORE)


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant time, so the response's timing does not tell how much of a guess was right.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))


async def metrics(request: Request) -> Response:
    """This process's figures in Prometheus's text format; with METRICS_TOKEN, only for its bearer."""
    settings = _settings()
    if isinstance(settings, JSONResponse):
        return settings
    if settings.metrics_token and not _authorized(request, settings.metrics_token):
        return JSONResponse({"error": "unauthorized", "detail": "Send Authorization: Bearer <METRICS_TOKEN>."},
                            status_code=401, headers={"WWW-Authenticate": "Bearer", **_NO_STORE})
    engine = await run_in_threadpool(startup.get_engine)  # the first call builds it (about a second)
    observer = engine.observer
    if not isinstance(observer, PrometheusMetrics):  # an engine built by hand, without the figures
        return JSONResponse({"error": "unavailable", "detail": "This engine keeps no metrics."}, status_code=503,
                            headers=_NO_STORE)
    body = await run_in_threadpool(observer.exposition)  # reads the job store
    body += ASSESSMENTS.exposition()  # read here, on the event loop its counts live on
    body += audit_exposition(startup.audit().counts())  # the audit writer's, this process's
    return Response(body, media_type=CONTENT_TYPE, headers=_NO_STORE)


def routes() -> list[BaseRoute]:
    """The operators' routes."""
    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"])]
