"""Confirm mode's expiry: questions nobody answered in time are expired — the alert
closed, the expiry reported in the chat and the buttons taken off — once each. Runs
under the `telegram` lease; a press after the expiry is refused by the decision itself,
so the pass interval only delays the report, never allows an order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from storage.facade import Storage
from storage.periodic import PeriodicWork
from storage.records import OutboxMessage
from storage.types import utcnow

MAX_WAIT_S: Final = 2.0


class ExpirySweeper(PeriodicWork):
    def __init__(
        self,
        storage: Storage,
        wake: Callable[[OutboxMessage], None],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__("confirm-expiry", self.step, max_wait=MAX_WAIT_S)
        self._storage = storage
        self._wake = wake
        self._clock = clock  # the storage's clock: expiry times are on it

    async def step(self) -> float:
        """Expire what is due; seconds until the next expiry (bounded)."""
        for confirmation_id in await self._storage.confirmations.due():
            _, queued = await self._storage.confirmations.expire(confirmation_id)
            if queued is not None:
                self._wake(queued)
        upcoming = await self._storage.confirmations.next_expiry()
        if upcoming is None:
            return MAX_WAIT_S
        return (upcoming - self._clock()).total_seconds()
