"""Per-key ordered execution: jobs of one key run one after another, keys run in parallel.

The order pipeline keys jobs by (user, symbol): alerts of one stock of one user keep
their order, while a slow KIS answer for one user never holds up another. A key has a
task only while it has work; the task exits when its queue is empty. A semaphore
bounds how many jobs run at once overall.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Final, Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
Job = Callable[[], Awaitable[None]]
DEFAULT_MAX_ACTIVE: Final = 512


class KeyedWorkers(Generic[K]):
    def __init__(self, *, max_active: int = DEFAULT_MAX_ACTIVE, name: str = "worker") -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self._name = name
        self._slots = asyncio.Semaphore(max_active)
        self._queues: dict[K, deque[Job]] = {}
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    def __repr__(self) -> str:
        return f"KeyedWorkers({self._name}, active_keys={len(self._tasks)})"

    @property
    def active_keys(self) -> int:
        return len(self._tasks)

    def submit(self, key: K, job: Job) -> None:
        """Queue `job` behind the jobs already queued for `key`."""
        if self._closed:
            raise RuntimeError("workers are closed")
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append(job)
        if key not in self._tasks:
            self._idle.clear()
            self._tasks[key] = asyncio.create_task(self._drain(key), name=self._name)

    async def wait_idle(self) -> None:
        """Until every queued job has run (tests, orderly shutdown)."""
        await self._idle.wait()

    async def close(self) -> None:
        """Cancel running jobs and drop queued ones (they are durable elsewhere)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queues.clear()
        self._tasks.clear()
        self._idle.set()

    async def _drain(self, key: K) -> None:
        try:
            while True:
                queue = self._queues.get(key)
                if not queue:
                    break
                job = queue.popleft()
                async with self._slots:
                    try:
                        await job()
                    except Exception:
                        log.exception("%s job failed", self._name)
        finally:
            # No await from the empty check above to here: a submit() in between cannot
            # queue behind a task that is about to exit.
            queue = self._queues.get(key)
            if not queue:
                self._queues.pop(key, None)
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]
            if queue and not self._closed:
                # this task was cancelled with work left: keep the key going
                self._tasks[key] = asyncio.create_task(self._drain(key), name=self._name)
            if not self._tasks:
                self._idle.set()
