"""One assessment's providers racing inside one time budget: fallback and hedging.

The chosen provider starts first. The next one in the chain starts when the
current one fails, returns an answer that cannot be read in full, asks to be
retried, or has sent no first token within its hedge delay. The first complete,
readable answer wins and every other call is cancelled (its HTTP request closed).
Nothing outlives the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from domain.errors import ProviderError, ProviderTimeout
from domain.messages import Message
from domain.parser import parse_answer
from domain.result import ParsedAnswer
from engine.health import ProviderHealth
from providers.base import Attempt, Provider

# Calls one provider, retrying inside the deadline (`RetryPolicy.attempts`):
# (provider, messages, deadline, budget, on_text, on_retry) -> the provider's answer.
# Without on_text (None), the provider is asked for the whole answer rather than a stream.
AttemptFn = Callable[[Provider, list[dict[str, Any]], float, float, Callable[[str], None] | None, Callable[[], None]],
                     Awaitable[Attempt]]

_EMIT_EVERY = 0.05  # seconds between progress updates sent to the caller


@dataclass(frozen=True)
class Outcome:
    """The answer that won, who gave it, and how the race went."""

    attempt: Attempt
    answer: ParsedAnswer  # or whatever the race's judge returned
    provider: Provider
    first_token_s: float | None
    hedged: bool
    fallback: bool
    tried: tuple[str, ...]


@dataclass(eq=False)
class _Lane:
    provider: Provider
    started: float
    reason: str  # "primary", "fallback" or "hedge"
    task: asyncio.Task[Attempt] = field(init=False)  # set as soon as the lane exists: the task needs the lane
    first_token: float | None = None
    spawned_next: bool = False
    done: bool = False
    text: str = field(default="", repr=False)


class Race:
    """Runs `chain` for one request; `run()` returns an `Outcome` or raises a `ProviderError`."""

    def __init__(self, chain: list[Provider], messages: list[dict[str, Any]], *, attempt: AttemptFn,
                 health_of: Callable[[str], ProviderHealth], hedge_after: float | None, started: float,
                 budget: float, deadline: float, kind: str, emit: Callable[[str], None] | None,
                 judge: Callable[[str], Any] = parse_answer) -> None:
        """`chain` is the order to try; a provider may appear twice (a hedge against its own slow tail).

        `attempt` calls one provider (with its retries); `health_of(name)` is a provider's health record;
        `hedge_after` is HEDGE_AFTER_SECONDS (None: learned per provider, 0: never hedge).
        `judge` reads a raw answer into an object with `.complete`: the contract's parser for
        assessments, something simpler for the free-text helpers. `emit` gets the leading answer as it
        grows; None means no one is watching, so every provider is asked for its answer whole: there is
        no first token then, and a lane is hedged when it takes longer than the provider's recent answers.
        """
        self.attempt = attempt
        self.health_of = health_of
        self.hedge_after = hedge_after
        self.kind = kind
        self.judge = judge
        self.messages = messages
        self.started = started
        self.budget = budget
        self.deadline = deadline
        self.emit = emit
        self.pending: list[Provider] = list(chain)
        self.lanes: list[_Lane] = []
        self.leader: _Lane | None = None
        self.errors: list[ProviderError] = []
        self.incomplete: tuple[_Lane, Attempt, ParsedAnswer] | None = None
        self._nudge: asyncio.Future[None] | None = None  # set to wake the race loop when a lane was added
        self._last_emit = 0.0

    # -- lanes ------------------------------------------------------------------------------

    def _start_next(self, reason: str) -> bool:
        if not self.pending:
            return False
        lane = _Lane(self.pending.pop(0), time.monotonic(), reason if self.lanes else "primary")
        lane.task = asyncio.ensure_future(self._run_lane(lane))
        self.lanes.append(lane)
        return True

    async def _run_lane(self, lane: _Lane) -> Attempt:
        emit = self.emit

        def on_text(text: str) -> None:
            if lane.first_token is None:
                lane.first_token = time.monotonic()
                self.health_of(lane.provider.name).first_token(lane.first_token - lane.started, self.kind)
            lane.text = text
            if self.leader is None or self.leader.done:
                self.leader = lane
            now = time.monotonic()
            # Twenty updates a second is all a reader sees; each one wakes the caller's thread.
            if self.leader is lane and now - self._last_emit >= _EMIT_EVERY and emit is not None:
                self._last_emit = now
                emit(text)

        def on_retry() -> None:
            # The provider will wait before retrying: let the next one try meanwhile.
            if not lane.spawned_next:
                lane.spawned_next = True
                if self._start_next("fallback") and self._nudge is not None and not self._nudge.done():
                    self._nudge.set_result(None)

        return await self.attempt(lane.provider, self.messages, self.deadline, self.budget,
                                  on_text if emit is not None else None, on_retry)

    def _hedge_after(self, lane: _Lane) -> float:
        health = self.health_of(lane.provider.name)
        if self.emit is None:  # whole answers: HEDGE_AFTER_SECONDS counts to a first token, which never comes
            return health.answer_hedge_after(self.kind, self.budget)
        if self.hedge_after is not None:
            return self.hedge_after
        return health.hedge_after(self.kind)

    def _hedge_due(self, now: float) -> float | None:
        """Start a hedge now if one is due; return when the next one could be due (or None)."""
        if self.hedge_after == 0:
            return None
        soonest = None
        for lane in self.lanes:
            if lane.done or lane.first_token is not None or lane.spawned_next:
                continue
            at = lane.started + self._hedge_after(lane)
            if now >= at:
                lane.spawned_next = True
                self._start_next("hedge")
            elif soonest is None or at < soonest:
                soonest = at
        return soonest

    # -- the race ---------------------------------------------------------------------------

    async def run(self) -> Outcome:
        """Race the chain: the first complete answer wins, else the first incomplete one, else a `ProviderError`."""
        self._start_next("primary")
        try:
            while True:
                now = time.monotonic()
                if now >= self.deadline:
                    return self._out_of_time()
                next_hedge = self._hedge_due(now)
                running = [lane.task for lane in self.lanes if not lane.done]
                if not running:
                    if not self._start_next("fallback"):
                        return self._give_up()
                    continue
                wake_at = min(self.deadline, next_hedge) if next_hedge else self.deadline
                self._nudge = nudge = asyncio.get_running_loop().create_future()
                await asyncio.wait([*running, nudge], timeout=max(wake_at - time.monotonic(), 0),
                                   return_when=asyncio.FIRST_COMPLETED)
                for lane in list(self.lanes):
                    if not lane.done and lane.task.done():
                        won = self._finish(lane)
                        if won is not None:
                            return won
        finally:
            self._cancel_all()

    def _finish(self, lane: _Lane) -> Outcome | None:
        lane.done = True
        health = self.health_of(lane.provider.name)
        try:
            attempt = lane.task.result()
        except ProviderError as exc:
            self.errors.append(exc)
            if exc.refusal:
                self._drop(lane.provider)
            return None
        answer = self.judge(attempt.raw)
        if attempt.cut_off_at is not None:  # a runaway answer: whatever was read is not trusted as complete
            answer = answer.cut_at(attempt.cut_off_at)
        if not answer.complete:
            if self.incomplete is None:
                self.incomplete = (lane, attempt, answer)
            return None
        health.success()
        health.answered(time.monotonic() - lane.started, self.kind)
        return self._outcome(lane, attempt, answer)

    def _drop(self, provider: Provider) -> None:
        """A provider that refused the request takes no further part: no pending lane, no lane still running."""
        self.pending = [p for p in self.pending if p.name != provider.name]
        for other in self.lanes:
            if other.provider.name == provider.name and not other.done:
                other.done = True
                other.task.cancel()

    def _outcome(self, lane: _Lane, attempt: Attempt, answer: ParsedAnswer) -> Outcome:
        first = min((x.first_token for x in self.lanes if x.first_token is not None), default=None)
        return Outcome(attempt=attempt, answer=answer, provider=lane.provider,
                       first_token_s=(first - self.started) if first is not None else None,
                       hedged=any(x.reason == "hedge" for x in self.lanes),
                       fallback=any(x.reason == "fallback" for x in self.lanes),
                       tried=tuple(dict.fromkeys(x.provider.name for x in self.lanes)))

    def _give_up(self) -> Outcome:
        if self.incomplete is not None:
            return self._outcome(*self.incomplete)
        first = self.errors[0]
        firsts: dict[str, ProviderError] = {}
        for error in self.errors:  # one message per distinct failure
            firsts.setdefault(str(error), error)
        distinct = list(firsts.values())
        if len(distinct) == 1:
            raise first
        if first.message is None or any(e.message is None for e in distinct[1:]):  # an error from outside the app
            raise type(first)(f"{first} Also: {' '.join(str(e) for e in distinct[1:])}", provider=first.provider)
        also = first.message.also + tuple(e.message for e in distinct[1:] if e.message)
        raise type(first)(replace(first.message, also=also), provider=first.provider)

    def _out_of_time(self) -> Outcome:
        if self.incomplete is not None:
            return self._outcome(*self.incomplete)
        titles = ", ".join(dict.fromkeys(lane.provider.title for lane in self.lanes))
        raise ProviderTimeout(Message("routing.over_budget", {"budget": self.budget, "titles": titles}),
                              provider=self.lanes[0].provider.name if self.lanes else "")

    def _cancel_all(self) -> None:
        now = time.monotonic()
        for lane in self.lanes:
            if not lane.task.done():
                lane.task.cancel()
                waited = now - lane.started
                if lane.first_token is None and lane.spawned_next and waited >= self._hedge_after(lane):
                    self.health_of(lane.provider.name).stalled(waited)
