"""Send pacing (pure): a GCRA schedule per key, with a small burst.

Telegram asks bots to stay near one message a second per chat (short bursts are
fine) and about 30 a second overall; `Pacer.book` returns how long to wait before a
send so that both hold. Booking reserves the slot, so concurrent senders queue.
"""

from __future__ import annotations

from collections.abc import Hashable


class Pacer:
    def __init__(self, rate_per_s: float, burst: int = 1) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self.interval
        self._tat: dict[Hashable, float] = {}

    def book(self, key: Hashable, now: float) -> float:
        """Reserve the next slot for `key`; return the wait (0 when it may go now)."""
        tat = max(self._tat.get(key, now), now)
        start = max(now, tat - self._tolerance)
        self._tat[key] = max(tat, start) + self.interval
        return start - now

    def forget_idle(self, now: float) -> None:
        """Drop keys whose schedule is in the past (keeps memory flat with many chats)."""
        for key in [k for k, tat in self._tat.items() if tat <= now]:
            del self._tat[key]

    def __len__(self) -> int:
        return len(self._tat)
