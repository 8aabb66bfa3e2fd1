"""What a page costs on the wire, as Chromium counts it: DevTools' `Network.loadingFinished` `encodedDataLength`
(each response's headers and its body as sent, compressed or not), for the first-page test and benchmark.

Used with Playwright's sync API: DevTools events arrive while Playwright waits, so `settle` waits by
`page.wait_for_timeout` (a `time.sleep` would let no event in).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

FONT_TYPES = ("font/", "application/font")
HIGHLIGHTER = "StreamlitSyntaxHighlighter"  # the 1.5 MB chunk `st.code` and `st.json` pull in


@dataclass(frozen=True)
class Fetched:
    """One HTTP response the page received."""

    url: str
    bytes: int               # on the wire: headers and the encoded body
    encoding: str | None     # its Content-Encoding (None: sent as it is)
    mime: str

    @property
    def is_font(self) -> bool:
        return self.mime.startswith(FONT_TYPES) or self.url.endswith((".woff2", ".woff", ".ttf"))


class WireLog:
    """Every HTTP request of one page from now on, and what its response cost (DevTools' Network domain)."""

    def __init__(self, page) -> None:
        self.page = page
        self.started: dict[str, str] = {}
        self.finished: dict[str, int] = {}
        self.failed: set[str] = set()
        self.answers: dict[str, tuple[str | None, str]] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", self._started)
        cdp.on("Network.responseReceived", self._answered)
        cdp.on("Network.loadingFinished", lambda e: self.finished.__setitem__(e["requestId"], e["encodedDataLength"]))
        cdp.on("Network.loadingFailed", lambda e: self.failed.add(e["requestId"]))
        cdp.send("Network.enable")
        self._cdp = cdp  # kept: the session ends when it is collected

    def _started(self, event: dict) -> None:
        self.started[event["requestId"]] = event["request"]["url"]

    def _answered(self, event: dict) -> None:
        response = event["response"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        self.answers[event["requestId"]] = (headers.get("content-encoding"), response.get("mimeType", ""))

    def settle(self, seconds: float = 30.0) -> list[Fetched]:
        """Wait until every request started so far has finished (or failed); what they cost, largest first."""
        ids = set(self.started)
        deadline = time.monotonic() + seconds
        while not ids <= self.finished.keys() | self.failed:
            if time.monotonic() > deadline:
                missing = [self.started[i] for i in ids - self.finished.keys() - self.failed]
                raise AssertionError(f"still loading after {seconds:g} s: {missing[:5]}")
            self.page.wait_for_timeout(50)
        found = [Fetched(self.started[i], self.finished[i], *self.answers.get(i, (None, ""))) for i in ids
                 if i in self.finished]
        return sorted(found, key=lambda f: -f.bytes)

    def quiet(self, seconds: float = 1.0, limit: float = 15.0) -> list[str]:
        """Wait until no new request has started for `seconds` (at most `limit`); every URL requested by then.

        For questions about what a page asked for, not what it cost: a request still in flight (a lazy chunk
        the server is slow to send on a busy machine) does not hold the answer up."""
        deadline = time.monotonic() + limit
        count, since = len(self.started), time.monotonic()
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
            if len(self.started) != count:
                count, since = len(self.started), time.monotonic()
            elif time.monotonic() - since >= seconds:
                break
        return self.urls()

    def urls(self) -> list[str]:
        """Every URL requested so far."""
        return list(self.started.values())


def sign_in_form_cost(context, url: str, seconds: float = 30.0) -> list[Fetched]:
    """Open `url` in a new page of `context` and wait for a usable sign-in form (the password field and the submit
    button shown); every response the page had asked for by then, once received."""
    from playwright.sync_api import expect

    page = context.new_page()
    log = WireLog(page)
    page.goto(url)
    expect(page.locator("input[type=password]").first).to_be_visible(timeout=seconds * 1000)
    expect(page.locator('[data-testid="stFormSubmitButton"] button').first).to_be_enabled(timeout=seconds * 1000)
    return log.settle(seconds)


def total(fetched: list[Fetched], *, fonts: bool = True) -> int:
    """The bytes of `fetched` on the wire (without the fonts when `fonts` is False)."""
    return sum(f.bytes for f in fetched if fonts or not f.is_font)


__all__ = ["FONT_TYPES", "HIGHLIGHTER", "Fetched", "WireLog", "sign_in_form_cost", "total"]
