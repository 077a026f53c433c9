"""GuardInputs: the pipeline's per-user cache of guard inputs (no prices, no holdings)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from kis.env import Environment
from storage.records import UserRecord
from webhook_server.guards import GuardInputs, UserState


def state(paused: bool) -> UserState:
    user = UserRecord(
        id=1, telegram_id=1, chat_id=1, language="en", active_environment=Environment.PAPER,
        paused=paused, created_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    return UserState(user, None)


class Loader:
    def __init__(self) -> None:
        self.paused = False
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, user_id: int) -> UserState | None:
        self.calls += 1
        seen = self.paused  # what the database said when the read ran
        self.started.set()
        await self.release.wait()
        return state(seen) if user_id == 1 else None


async def test_loaded_once_until_forgotten() -> None:
    loader = Loader()
    inputs = GuardInputs(loader)
    first = await inputs.get(1)
    assert first is not None and not first.user.paused
    assert await inputs.get(1) is first and loader.calls == 1
    loader.paused = True
    inputs.forget(1)
    again = await inputs.get(1)
    assert again is not None and again.user.paused and loader.calls == 2


async def test_unknown_users_are_not_cached() -> None:
    loader = Loader()
    inputs = GuardInputs(loader)
    assert await inputs.get(2) is None
    assert await inputs.get(2) is None
    assert loader.calls == 2


async def test_a_change_during_a_load_is_not_hidden() -> None:
    loader = Loader()
    inputs = GuardInputs(loader)
    loader.release.clear()
    reading = asyncio.create_task(inputs.get(1))
    await asyncio.wait_for(loader.started.wait(), 5)
    loader.paused = True  # /pause commits while the old state is being read
    inputs.forget(1)
    loader.release.set()
    stale = await asyncio.wait_for(reading, 5)
    assert stale is not None and not stale.user.paused  # this alert raced the change
    fresh = await inputs.get(1)
    assert fresh is not None and fresh.user.paused  # but the old state was not kept


async def test_bounded() -> None:
    loader = Loader()
    inputs = GuardInputs(lambda uid: loader(1), max_users=2)
    for uid in (1, 2, 3):
        await inputs.get(uid)
    assert "cached_users=2" in repr(inputs)
    inputs.forget_all()
    assert "cached_users=0" in repr(inputs)


async def test_a_burst_for_one_user_waits_for_one_load() -> None:
    """Many alerts of one user at once (an alert for several accounts, a backlog): one
    database read, not one per alert (they starved the order writes of the database)."""
    loader = Loader()
    loader.release.clear()
    inputs = GuardInputs(loader)
    waiting = [asyncio.ensure_future(inputs.get(1)) for _ in range(20)]
    await asyncio.wait_for(loader.started.wait(), 5)
    loader.release.set()
    states = await asyncio.gather(*waiting)
    assert loader.calls == 1 and all(s is states[0] for s in states)


async def test_a_load_started_before_a_forget_is_not_shared_after_it() -> None:
    loader = Loader()
    loader.release.clear()
    inputs = GuardInputs(loader)
    early = asyncio.ensure_future(inputs.get(1))
    await asyncio.wait_for(loader.started.wait(), 5)
    loader.paused = True
    inputs.forget(1)
    late = asyncio.ensure_future(inputs.get(1))
    loader.release.set()
    assert not (await early).user.paused  # type: ignore[union-attr]
    fresh = await late
    assert fresh is not None and fresh.user.paused and loader.calls == 2


async def test_a_cancelled_load_leaves_its_waiters_to_load_again() -> None:
    loader = Loader()
    loader.release.clear()
    inputs = GuardInputs(loader)
    first = asyncio.ensure_future(inputs.get(1))
    await asyncio.wait_for(loader.started.wait(), 5)
    second = asyncio.ensure_future(inputs.get(1))  # runs before the cancel lands: it waits
    first.cancel()
    loader.release.set()
    state_ = await asyncio.wait_for(second, 5)
    assert state_ is not None and loader.calls == 2
