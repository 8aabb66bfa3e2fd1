"""The one retry layer: how often, and after how long, a provider is asked again."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from domain.errors import ProviderError, ProviderTimeout
from domain.messages import Message
from engine.health import ProviderHealth
from providers.base import Attempt, Provider
from utils.settings import Settings

log = logging.getLogger(__name__)

_MAX_BACKOFF = 8.0


class RetryPolicy:
    """Calls one provider until it answers, fails for good, or the deadline comes; its failures go to its health."""

    def __init__(self, settings: Settings, health_of: Callable[[str], ProviderHealth]) -> None:
        """`settings` gives LLM_MAX_RETRIES, LLM_STREAM and LLM_RETRY_BASE_DELAY; `health_of(name)` a health record."""
        self.settings = settings
        self.health_of = health_of

    async def attempts(self, provider: Provider, messages: list[dict[str, Any]], deadline: float, budget: float,
                       on_text: Callable[[str], None] | None, on_retry: Callable[[], None] = lambda: None) -> Attempt:
        """Call `provider` until it answers, a non-retryable error, or the deadline.

        With `on_text`, the answer streams (LLM_STREAM permitting) and `on_text` gets it as it grows; without,
        the provider is asked for the whole answer at once.
        Retries what is worth retrying (timeouts, connection errors, 408/409/429/5xx), honouring
        Retry-After when it fits in what is left; `on_retry` is called before each wait.
        """
        s = self.settings
        health = self.health_of(provider.name)
        for attempt in range(s.max_retries + 1):
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(max(remaining, 0)):
                    return await provider.complete(messages, stream=s.stream and on_text is not None, on_text=on_text)
            except TimeoutError:
                health.failure()
                raise ProviderTimeout(Message("provider.over_budget", {"title": provider.title, "budget": budget}),
                                      provider=provider.name) from None
            except ProviderError as exc:
                if exc.retryable:
                    health.failure()
                if not exc.retryable or attempt == s.max_retries:
                    raise
                delay = self.backoff(attempt, exc.retry_after)
                if time.monotonic() + delay >= deadline:
                    raise
                log.info("retrying provider=%s after %s in %.2f s", provider.name, type(exc).__name__, delay)
                on_retry()
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `attempt + 1`: the server's Retry-After, else exponential."""
        if retry_after is not None:
            return retry_after
        # Exponential with jitter, as openai-python does, so retries from many sessions spread out.
        return min(self.settings.retry_base_delay * 2.0 ** attempt, _MAX_BACKOFF) * (1 - 0.25 * random.random())
