"""URLs in messages and log lines: never with their password.

DATABASE_URL, REDIS_URL and the providers' base URLs may carry `user:password@`; an error message, a
log line or a page that shows such a URL shows `user:***@` instead (a lone `token@` becomes `***@`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# scheme://userinfo@ — to the last '@' before a space, so a password holding '@' or '/' is hidden whole (hiding
# too much of a URL without a password but with a later '@' is the safe mistake).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s]*)@")


def _hidden(match: re.Match[str]) -> str:
    user, colon, _ = match["userinfo"].partition(":")
    return f"{match['scheme']}{user}:***@" if colon else f"{match['scheme']}***@"


def without_password(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _USERINFO.sub(_hidden, text)


def url_problem(url: str) -> str | None:
    """What makes `url` unusable (a port that is not a number from 1 to 65535, no scheme), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for 'abc' or 99999
    except ValueError as exc:
        if "Port" in str(exc) or "port" in str(exc):
            return "its port is not a number from 1 to 65535"
        return "it cannot be read as a URL"
    if port == 0:
        return "its port is not a number from 1 to 65535"
    if not parts.scheme or "://" not in url:
        return "it does not start with a scheme such as postgresql://, redis:// or https://"
    return None


__all__ = ["url_problem", "without_password"]
