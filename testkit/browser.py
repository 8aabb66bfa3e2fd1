"""Debian's Chromium, as the tests and benchmarks launch it through Playwright (never a downloaded browser)."""

from __future__ import annotations

import contextlib

CHROMIUM = "/usr/bin/chromium"
# As the machine's probe found: without these, Chromium keeps dialling hosts a closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# The tests' browser only: without V8's optimising compilers (TurboFan, Maglev), which spend CPU on background threads
# making Streamlit's code faster for a page that lives a few seconds. What a page does is the same; a page load and an
# assessment cost 4-8 % less CPU (3 rounds of 6, measured machine-wide). Benchmarks keep a clinic's browser.
TEST_CHROMIUM_ARGS = [*CHROMIUM_ARGS, "--js-flags=--no-opt --no-maglev"]

# The clinic's browsers ask for Korean; headless Chromium asks for en-US whatever its --lang or LANG, and the app
# follows the browser's language the first time (ui/language.py).
CLINIC_LOCALE = "ko-KR"


class LocaleDefault:
    """A Playwright `Browser` whose new contexts and pages ask for `locale` unless told otherwise: every browser
    test sees the Korean a clinic's browser asks for, and a test of the language itself names its own."""

    def __init__(self, browser, locale: str = CLINIC_LOCALE) -> None:
        self._browser = browser
        self._locale = locale

    def new_context(self, **options):
        """`Browser.new_context`, in `locale` unless `options` name one."""
        options.setdefault("locale", self._locale)
        return self._browser.new_context(**options)

    def new_page(self, **options):
        """`Browser.new_page`, in `locale` unless `options` name one."""
        options.setdefault("locale", self._locale)
        return self._browser.new_page(**options)

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


# A bedside phone (an iPhone 12-14 class screen) and the desktop the layout was drawn for, both the clinic's (Korean).
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 3,
         "locale": CLINIC_LOCALE}
DESKTOP = {"viewport": {"width": 1400, "height": 1000}, "locale": CLINIC_LOCALE}
LAPTOP = {"viewport": {"width": 1400, "height": 900}, "locale": CLINIC_LOCALE}  # a clinic laptop's browser window
TAP_MIN_PX = 44  # Apple's and WCAG 2.5.5's minimum for a target a thumb must hit

# Everything a thumb taps. A checkbox, radio or toggle is hit through its label (the input itself is hidden); a file
# input through its visible button; an inline link in running text is exempt (WCAG 2.5.5), Streamlit's links are not.
_SMALL_TARGETS = """([minimum, scope]) => {
  const root = scope ? document.querySelector(scope) : document;
  const selector = 'button, a[data-testid], summary, select, textarea, input:not([type=hidden]):not([type=file]), '
    + '[role=button], [role=tab], [role=combobox], [role=checkbox], [role=switch], [role=radio]';
  const small = [];
  for (const element of root ? root.querySelectorAll(selector) : []) {
    const target = element.matches('input[type=checkbox], input[type=radio]') ? element.closest('label') || element
      : element;
    const box = target.getBoundingClientRect();
    const style = getComputedStyle(target);
    if (!box.width || !box.height || style.visibility === 'hidden' || target.closest('[aria-hidden=true]')) continue;
    if (box.right <= 0 || box.left >= window.innerWidth) continue;  // a closed sidebar's controls are off screen
    if (box.height < minimum) {
      const name = (target.getAttribute('aria-label') || target.innerText || target.getAttribute('placeholder')
                    || '').trim().slice(0, 40);
      small.push(`${target.tagName.toLowerCase()}[${target.getAttribute('data-testid') || target.getAttribute('role')
                  || ''}] "${name}" ${box.height.toFixed(1)}px`);
    }
  }
  return small;
}"""

_OVERFLOW = """() => {
  const main = document.querySelector('[data-testid=stMain]');
  return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth, main ? main.scrollWidth : 0);
}"""


def small_tap_targets(page, minimum: float = TAP_MIN_PX, scope: str | None = None, settle_ms: int = 5_000) -> list[str]:
    """Every visible control on `page` (or inside the `scope` selector) lower than `minimum` CSS px, described.

    A page's phone style sheet is one element of its script run, so between two runs a control can be drawn for a
    moment without it. The scan waits up to `settle_ms` for no small control to be left, then reports what is still
    there.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):  # the scan below reports what is still small
        page.wait_for_function(f"args => ({_SMALL_TARGETS})(args).length === 0", arg=[minimum, scope],
                               timeout=settle_ms, polling=100)
    return page.evaluate(_SMALL_TARGETS, [minimum, scope])


def page_scroll_width(page) -> int:
    """The widest scrolling width of the document and Streamlit's main pane (which scrolls instead of the body)."""
    return page.evaluate(_OVERFLOW)


def in_viewport(locator) -> bool:
    """Whether any part of the element is inside the visible viewport (not only on the page below the fold)."""
    return locator.evaluate("e => { const r = e.getBoundingClientRect();"
                            " return r.bottom > 0 && r.top < window.innerHeight && r.height > 0; }")


def fully_in_viewport(locator) -> bool:
    """Whether the whole element is inside the visible viewport, top to bottom."""
    return locator.evaluate("e => { const r = e.getBoundingClientRect();"
                            " return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }")


_CUT_OFF = """e => {
  const cut = [];
  for (const x of [e, ...e.querySelectorAll('*')]) {
    const r = x.getBoundingClientRect(), s = getComputedStyle(x);
    if (!r.width || s.visibility === 'hidden' || !x.textContent.trim()) continue;
    const clipped = s.overflowX !== 'visible' || s.textOverflow === 'ellipsis';
    if ((clipped && x.scrollWidth > x.clientWidth + 1) || r.right > window.innerWidth + 1 || r.left < -1)
      cut.push(`${x.tagName.toLowerCase()}[${x.getAttribute('data-testid') || ''}] `
               + `"${x.textContent.trim().slice(0, 40)}" ${x.scrollWidth}>${x.clientWidth} right ${r.right | 0}`);
  }
  return cut;
}"""


def cut_off(locator) -> list[str]:
    """The element's text that does not show whole: clipped or ellipsised inside it, or past the window's edge."""
    return locator.evaluate(_CUT_OFF)


# Streamlit keeps the previous run's elements on screen, marked stale, until the new run has drawn over them; a
# click in between can find two copies of one button.
_SETTLED = """() => !document.querySelector('[data-testid=stStatusWidget]')
  && !document.querySelector('[data-testid=stElementContainer][data-stale=true]')"""


def settled(page, timeout_ms: int = 30_000) -> None:
    """Wait until the page's script run has finished and no element of the run before is left on screen."""
    page.wait_for_function(_SETTLED, timeout=timeout_ms)
