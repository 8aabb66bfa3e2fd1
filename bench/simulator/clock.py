"""Simulated time against wall time: the one place `scale` turns a simulated duration into a real one."""

from __future__ import annotations

import asyncio
import time


class SimClock:
    """Simulated seconds since the clock was made, running `scale` wall seconds per simulated second."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the clock was made."""
        return (time.monotonic() - self._t0) / self.scale

    def wall(self, seconds: float) -> float:
        """`seconds` of simulated time in wall seconds."""
        return seconds * self.scale

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of simulated time."""
        if seconds > 0:
            await asyncio.sleep(seconds * self.scale)
