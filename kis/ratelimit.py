"""An async rate limiter that spaces calls evenly (GCRA with a burst of one).

Each `acquire()` books the next free slot on a virtual schedule *before* it awaits
anything, so callers are served in arrival order (FIFO), nobody polls, and no two
calls are ever closer than `1 / rate` seconds: there is no burst above the rate, not
even after a quiet period.

A second check guards the real send times against the hard per-second limit: when
the event loop stalls, sleepers wake late and together, so calls booked `1 / rate`
apart could leave back to back. No more than `per_second` calls are released in any
one-second window, whatever the wake-up times were. With the pace below that limit
(KIS.md: 19 of 20/s) the check never bites on ordinary wake-up lateness, so it costs
no throughput.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

WINDOW_S = 1.0


def rate_limit_backoff(attempt: int) -> float:
    """Seconds before retry `attempt` (1, 2, …) after EGW00201: 0.2, 0.4, … up to 2."""
    return float(min(0.2 * 2.0 ** (attempt - 1), 2.0))
_TOLERANCE_S = 1e-6  # float schedules land a hair short of a whole second


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        per_second: int | None = None,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate_per_s = rate_per_s
        self.interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None  # earliest time the next call may start
        self.window_capacity = max(1, per_second or math.ceil(rate_per_s))
        self._released: deque[float] = deque()  # release times within the last second

    async def acquire(self) -> None:
        """Wait for this caller's slot. A cancelled waiter's slot stays used (never faster)."""
        now = self._clock()
        slot = now if self._next_slot is None else max(now, self._next_slot)
        self._next_slot = slot + self.interval
        delay = slot - now
        if delay > 0:
            await self._sleep(delay)
        while True:
            now = self._clock()
            while self._released and self._released[0] <= now - WINDOW_S + _TOLERANCE_S:
                self._released.popleft()
            if len(self._released) < self.window_capacity:
                self._released.append(now)
                return
            await self._sleep(self._released[0] + WINDOW_S - now)

    def __repr__(self) -> str:
        return f"RateLimiter(rate_per_s={self.rate_per_s})"
