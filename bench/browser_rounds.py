"""The browser rounds of `python -m bench.multi_server`: sessions that sign in, type a case, press 평가하기 at once.

Each session is its own browser context (its own cookies, so its own Streamlit session), signed in as
the bench's account; it watches its page until the card names its own case's token, and records any
other session's token it ever saw (there must be none).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.shared_database import sign_in
from testkit.answers import DISCLAIMER, xml_answer
from testkit.browser import CHROMIUM, CHROMIUM_ARGS
from testkit.fake_llm import FakeLLM, RecordedRequest

TOKEN = re.compile(r"TOKEN-[0-9a-f]{6}-\d+")

CASES = [
    "코 옆 5mm 진주빛 구진, 6개월간 서서히 커짐, 가끔 출혈",
    "등에 있는 비대칭 흑갈색 반점, 최근 색이 변함",
    "손등의 거친 각질성 구진, 햇빛 노출 부위",
    "얼굴의 노란빛 작은 구진 여러 개, 가운데 함몰",
    "두피의 가려운 붉은 판, 1년째 각질",
]


@dataclass
class Session:
    """One browser session: its case, and what it saw in each round it took part in."""

    number: int
    token: str
    text: str
    rounds: dict[str, dict] = field(default_factory=dict)  # round -> server, latency_s, cached, foreign, error


@dataclass(frozen=True)
class Round:
    """One step of the run: who takes part, on which server, and what the cards must say."""

    name: str
    what: str
    sessions: list[Session]
    other_server: bool       # each session on the server it did not use before
    cached: bool             # every card must come from the shared cache (and no provider be asked)


# -- processes ---------------------------------------------------------------------------------

def answer_for(token: str) -> str:
    """A complete contract answer whose findings name `token`."""
    summary = f"코 옆의 진주양 구진으로 기저세포암을 의심합니다 (사례 {token})."
    return xml_answer(1, 78, "기저세포암", summary, [(11, 12, "피지샘증식증"), (8, 6, "편평세포암")], tail=DISCLAIMER)


def echo_token(request: RecordedRequest) -> str:
    """The fake provider's answer: the case's own token in the findings, so a card shows whose case it answers."""
    found = TOKEN.search(request.text())
    return answer_for(found.group(0) if found else "없음")


# -- browser -----------------------------------------------------------------------------------

async def open_page(browser, url: str, seconds: float, one_at_a_time: asyncio.Lock):
    """A new browser context (its own cookies, so its own Streamlit session), signed in, showing the app.

    The sign-ins take turns: every session comes from 127.0.0.1, and the sign-in throttle counts each attempt
    of an address before checking its password (refunded on success), so a burst of 20 at once from one
    address is refused, by design (storage/sign_in_throttle.py).
    """
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="ko-KR")
    page = await context.new_page()
    await page.goto(url, timeout=seconds * 1000)
    async with one_at_a_time:
        await sign_in(page, seconds)
    return context, page


async def assess(page, session: Session, name: str, seconds: float) -> None:
    """Press 평가하기 (the case is typed), and watch until the card shows the session's own token."""
    started = time.monotonic()
    foreign: set[str] = set()
    await page.get_by_role("button", name="평가하기").click()
    deadline = started + seconds
    latency, seen_at, card = None, None, ""
    while time.monotonic() < deadline:
        # Everything the page shows, the streaming findings included: no other session's token, ever.
        # textContent, not innerText: no layout per look, so watching 20 pages does not load the machine.
        shown, card = await page.evaluate(_LOOK)
        foreign |= set(TOKEN.findall(shown)) - {session.token}
        if latency is None and session.token in card:
            seen_at = time.monotonic()
            latency = seen_at - started
        # The card is drawn element by element: its caption (provider · time · 캐시 or 새 답변) comes last.
        if latency is not None and ("캐시" in card or "새 답변" in card):
            break
        await asyncio.sleep(0.1)
    session.rounds[name].update(
        latency_s=latency, seen_at=seen_at, foreign=sorted(foreign), cached=("캐시" in card) if card else None,
        error=None if latency is not None else f"no card with its token within {seconds:g} s")


# The main area's text and the result card's text.
_LOOK = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const card = document.querySelector('.st-key-result_card');
  return [main ? main.textContent : '', card ? card.textContent : ''];
}"""


async def drive(app_urls: list[str], plan: list[Round], seconds: float, fake: FakeLLM, log,
                first: Callable[[Any], Awaitable[dict]] | None = None) -> dict[str, dict]:
    """`first(browser)` (its result under "first"), then every round of `plan`; returns per round: wall time,
    provider calls, and its span in wall-clock time."""
    from playwright.async_api import async_playwright

    done: dict[str, dict] = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            if first is not None:
                done["first"] = await first(browser)
            one_at_a_time = asyncio.Lock()
            for step in plan:
                for s in step.sessions:
                    # Split evenly, as a sticky-session proxy would; "other": as after a failover.
                    s.rounds[step.name] = {"server": (s.number + step.other_server) % len(app_urls)}
                log(f"round {step.name}: opening {len(step.sessions)} sessions")
                opened = await asyncio.gather(*(open_page(browser, app_urls[s.rounds[step.name]["server"]], seconds,
                                                          one_at_a_time)
                                                for s in step.sessions))
                # Every case typed first, then all press at once.
                await asyncio.gather(*(page.get_by_role("textbox", name="증상 및 소견").fill(s.text)
                                       for s, (_, page) in zip(step.sessions, opened, strict=True)))
                calls_before = len(fake.chat_requests)
                log(f"round {step.name}: {len(step.sessions)} sessions press 평가하기 at once")
                began, started = time.time(), time.monotonic()
                await asyncio.gather(*(assess(page, s, step.name, seconds)
                                       for s, (_, page) in zip(step.sessions, opened, strict=True)))
                last = max((s.rounds[step.name]["seen_at"] or time.monotonic()) for s in step.sessions)
                done[step.name] = {"wall_s": last - started, "from": began, "until": time.time(),
                                   "provider_calls": len(fake.chat_requests) - calls_before}
                for context, _ in opened:
                    await context.close()
        finally:
            await browser.close()
    return done
