"""An async rate limiter that spaces calls evenly (GCRA with a burst of one).

Each `acquire()` books the next free slot on a virtual schedule *before* it awaits
anything, so callers are served in arrival order (FIFO), nobody polls, and no two
calls are ever closer than `1 / rate` seconds: there is no burst above the rate, not
even after a quiet period.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate_per_s = rate_per_s
        self.interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None  # earliest time the next call may start

    async def acquire(self) -> None:
        """Wait for this caller's slot. A cancelled waiter's slot stays used (never faster)."""
        now = self._clock()
        slot = now if self._next_slot is None else max(now, self._next_slot)
        self._next_slot = slot + self.interval
        delay = slot - now
        if delay > 0:
            await self._sleep(delay)

    def __repr__(self) -> str:
        return f"RateLimiter(rate_per_s={self.rate_per_s})"
