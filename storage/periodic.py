"""Work that runs again and again while this instance holds a lease (`LeaseWork`):
the confirm-mode expiry, the daily digest, reservation results. Each pass says how
long to wait before the next; `poke` runs one early."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from storage.errors import log_failure

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[float]]
RETRY_AFTER_ERROR_S: Final = 5.0


class PeriodicWork:
    def __init__(self, name: str, step: Step, *, max_wait: float = 60.0) -> None:
        self._name = name
        self._step = step
        self._max_wait = max_wait
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()

    def __repr__(self) -> str:
        return f"PeriodicWork({self._name!r}, running={self.running})"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def gained(self, name: str, epoch: int) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def losing(self, name: str) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def poke(self) -> None:
        self._poked.set()

    async def _run(self) -> None:
        while True:
            self._poked.clear()
            try:
                wait = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(log, exc, "%s: a pass failed", self._name)
                wait = RETRY_AFTER_ERROR_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poked.wait(), max(0.05, min(wait, self._max_wait)))
