"""The session cookie's two routes: a Streamlit script cannot set an HttpOnly cookie, so these do.

- `GET /auth/session?grant=…&next=…`: the sign-in form (ui/auth.py) checked the password and holds a
  single-use grant valid 60 s; the page sends the browser here, which trades the grant for the session
  id, sets it as the cookie and goes on to `next`. The cookie: 256 random bits, HttpOnly, SameSite=Lax
  (a colleague's link from an e-mail or the EMR still arrives signed in), Path=/, Secure when the request
  came over HTTPS (its own scheme, or `X-Forwarded-Proto: https` behind TRUSTED_PROXY_HOPS proxies). No
  Max-Age: closing the browser forgets it; the server's limits end it anyway. Beside it, the device cookie
  (storage/devices.py: random, HttpOnly, a year): this browser signed in to that account before, so
  strangers' failures at the account do not make it wait.
- `GET /auth/signed-out?next=…`: forgets the cookie, but only when its session has already ended (the
  sign-out button ended it on the server), so nobody can sign a browser out from another site.

CSRF: the only state change here is the grant's trade (a login CSRF would sign a victim into the
attacker's account). It is refused unless the browser says the request came from this site
(`Sec-Fetch-Site: same-origin`; browsers without it: an Origin or Referer whose host is this Host),
on top of the grant being unguessable, single-use and short-lived. Sign-out itself is the Streamlit
button, over the app's own websocket, which a cross-site page cannot drive with this cookie (SameSite).
`next` is only ever a path on this site: anything else goes to `/`, so there is no open redirect.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Route

from storage.database import StoreUnavailable
from storage.devices import DEVICE_COOKIE
from storage.sessions import COOKIE_NAME, GRANT_PATH, SIGNED_OUT_PATH, Session, session_key
from utils.settings import get_settings

log = logging.getLogger(__name__)

# Never a redirect into these: the grant route would loop, Streamlit's own endpoints are not pages.
_NOT_PAGES = ("/auth/", "/_stcore/", "/api/", "/media/", "/component/")


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this site (with its query), else `/`: never another site, never a loop."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith(_NOT_PAGES):
        return "/"
    return value


def same_origin(request: Request) -> bool:
    """Whether the browser says this request was started by a page of this site (the CSRF check)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host")
    return bool(source and host) and urlsplit(source).netloc.lower() == str(host).lower()


def is_https(request: Request) -> bool:
    """Whether the browser reached the app over HTTPS: directly, or per the last trusted proxy's X-Forwarded-Proto."""
    if request.url.scheme == "https":
        return True
    if get_settings().trusted_proxy_hops < 1:
        return False  # anyone can write the header; only a proxy the operator declared is believed
    values = [part.strip().lower() for value in request.headers.getlist("x-forwarded-proto")
              for part in value.split(",") if part.strip()]
    return bool(values) and values[-1] == "https"


def _sessions():
    import startup  # the engine's store, without building the engine

    return startup.sessions()


def _devices():
    import startup

    return startup.devices()


def _redirect(target: str) -> RedirectResponse:
    response = RedirectResponse(target, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the grant in this URL goes nowhere else
    return response


async def start_session(request: Request) -> RedirectResponse:
    """Trade a sign-in grant for the session cookie, then go to `next` (a refused grant just goes there)."""
    target = safe_next(request.query_params.get("next"))
    grant = request.query_params.get("grant", "")
    if not same_origin(request):
        log.warning("sign-in grant refused: the request did not come from this site")
        return _redirect(target)
    # Store work off the event loop: a busy store must not stall every other request of the server.
    try:
        traded = await run_in_threadpool(_sessions().redeem, grant) if grant else None
    except StoreUnavailable:  # the page the browser goes to says the database is down
        log.warning("sign-in grant not traded: the store is unavailable")
        traded = None
    if traded is None:
        return _redirect(target)  # used, late or made up: the page shows the sign-in form
    secret, session = traded
    response = _redirect(target)
    response.set_cookie(COOKIE_NAME, secret, path="/", httponly=True, samesite="lax", secure=is_https(request))
    log.info("session cookie set: %s (session %s)", session.user, session.key[:12])
    # A grant is only made after a right password: this browser is now a device the account knows.
    devices = _devices()
    try:
        device = await run_in_threadpool(devices.remember, session.user, request.cookies.get(DEVICE_COOKIE))
    except StoreUnavailable:  # the sign-in stands; the device is recognised at its next one
        log.warning("device cookie not set: the store is unavailable")
    else:
        response.set_cookie(DEVICE_COOKIE, device, max_age=devices.max_age_seconds, path="/", httponly=True,
                            samesite="lax", secure=is_https(request))
    return response


async def _has_ended(secret: str) -> bool:
    try:
        found = await run_in_threadpool(_sessions().check, session_key(secret), touch=False)
    except StoreUnavailable:
        return False  # cannot tell: the cookie stays, and the page checks it again once the database is back
    return not isinstance(found, Session)


async def signed_out(request: Request) -> RedirectResponse:
    """Forget this browser's session cookie if its session has ended; otherwise change nothing."""
    response = _redirect(safe_next(request.query_params.get("next")))
    secret = request.cookies.get(COOKIE_NAME)
    if secret and await _has_ended(secret):
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax", secure=is_https(request))
    return response


def routes() -> list[BaseRoute]:
    """The session cookie's routes."""
    return [Route(GRANT_PATH, start_session, methods=["GET"]), Route(SIGNED_OUT_PATH, signed_out, methods=["GET"])]
