"""KIS's per-app-key request limit: a sliding one-second window (KIS.md section 9)."""

from __future__ import annotations

from collections import deque

from kis.sim.clock import Clock


class SlidingWindow:
    """Allows at most `limit` accepted requests per key in any `window_s` seconds."""

    def __init__(self, clock: Clock, window_s: float = 1.0) -> None:
        self._clock = clock
        self._window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str, limit: int) -> bool:
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        edge = now - self._window_s
        while hits and hits[0] <= edge:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True
