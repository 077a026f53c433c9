"""Lease keepers on one PostgreSQL: keys spread over the live instances, a dead
holder's keys are taken after the lease runs out, a draining one hands over at once,
and work runs for a lease on exactly one instance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from storage.coordination import TELEGRAM_LEASE, LeaseKeeper, kis_lease
from storage.facade import Storage
from tests.storage.conftest import Target

KEYS = {kis_lease(f"{n:064x}", "paper") for n in range(6)}
BOUND = 10.0


class Work:
    """Records gained/lost leases; `changed` fires on every change."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.history: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def gained(self, name: str, epoch: int) -> None:
        self.running[name] = epoch
        self.history.append(("gained", name))
        self.changed.set()

    async def losing(self, name: str) -> None:
        self.running.pop(name, None)
        self.history.append(("lost", name))
        self.changed.set()


async def until(condition: Callable[[], bool], works: list[Work], within: float = BOUND) -> None:
    async def wait() -> None:
        while not condition():
            for work in works:
                work.changed.clear()
            await asyncio.wait(
                [asyncio.ensure_future(w.changed.wait()) for w in works],
                return_when=asyncio.FIRST_COMPLETED,
            )

    await asyncio.wait_for(wait(), within)


@pytest.fixture
async def pg(store: Storage, target: Target) -> AsyncIterator[Storage]:
    if target.backend != "postgresql":
        pytest.skip("several instances need PostgreSQL")
    await store.signals.start()
    yield store


@contextlib.asynccontextmanager
async def keeper(
    store: Storage, name: str, work: Work, *, ttl: float = 2.0, wanted: set[str] = KEYS
) -> AsyncIterator[LeaseKeeper]:
    async def want() -> set[str]:
        return {*wanted, TELEGRAM_LEASE}

    lease_keeper = LeaseKeeper(
        leases=store.leases, instances=store.instances, signals=store.signals, name=name,
        wanted=want, ttl=ttl,
    )
    lease_keeper.add_work("kis:", work)
    lease_keeper.add_work(TELEGRAM_LEASE, work)
    await lease_keeper.start()
    try:
        yield lease_keeper
    finally:
        await lease_keeper.close()


def exactly_once(works: list[Work]) -> bool:
    names = [name for work in works for name in work.running]
    return len(names) == len(set(names)) == len(KEYS) + 1


async def test_keys_spread_over_instances_and_each_runs_once(pg: Storage) -> None:
    a, b, c = Work(), Work(), Work()
    async with keeper(pg, "a", a), keeper(pg, "b", b), keeper(pg, "c", c):
        await until(
            lambda: exactly_once([a, b, c])
            and all(len([n for n in w.running if n.startswith("kis:")]) == 2 for w in (a, b, c)),
            [a, b, c],
        )


async def test_a_dead_holders_keys_are_taken_after_the_lease_runs_out(pg: Storage) -> None:
    a, b = Work(), Work()
    async with keeper(pg, "b", b, ttl=1.5), keeper(pg, "a", a, ttl=1.5) as doomed:
        await until(lambda: exactly_once([a, b]) and bool(a.running), [a, b])
        taken_from_a = set(a.running)
        # kill -9: the loop stops, nothing is handed over, the leases just run out.
        assert doomed._task is not None
        doomed._task.cancel()
        await asyncio.gather(doomed._task, return_exceptions=True)
        doomed._task = None
        doomed._draining = True  # so that leaving the block does not hand over
        loop = asyncio.get_running_loop()
        started = loop.time()
        await until(lambda: taken_from_a <= set(b.running), [b], within=1.5 + 3.0)
        assert loop.time() - started <= 1.5 + 2.0
        # The dead instance's view: past its local validity it may not act any more.
        assert all(not doomed.valid(name, epoch) for name, epoch in a.running.items())


async def test_draining_hands_every_lease_over_at_once(pg: Storage) -> None:
    a, b = Work(), Work()
    async with keeper(pg, "b", b, ttl=10.0), keeper(pg, "a", a, ttl=10.0) as leaving:
        await until(lambda: exactly_once([a, b]) and bool(a.running), [a, b])
        moved = set(a.running)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await leaving.drain()
        assert a.running == {}
        await until(lambda: moved <= set(b.running), [b], within=3.0)
        assert loop.time() - started < 1.5  # not the 10 s a dead holder would cost
        # The new holder works under a new epoch; the old one may not act any more.
        assert all(not leaving.valid(name, 1) for name in moved)


async def test_a_joining_instance_gets_its_share_back(pg: Storage) -> None:
    a, b = Work(), Work()
    async with keeper(pg, "a", a):
        await until(lambda: len([n for n in a.running if n.startswith("kis:")]) == 6, [a])
        async with keeper(pg, "b", b):
            await until(
                lambda: exactly_once([a, b])
                and len([n for n in b.running if n.startswith("kis:")]) >= 2,
                [a, b],
            )
            # Every handover stopped the work on one side before it started on the other.
            for name in KEYS:
                if name in b.running:
                    assert ("lost", name) in a.history


async def test_keys_no_longer_wanted_are_given_back(pg: Storage) -> None:
    a = Work()
    wanted = set(KEYS)
    async with keeper(pg, "a", a, wanted=wanted) as holder:
        await until(lambda: len(a.running) == len(KEYS) + 1, [a])
        gone = sorted(KEYS)[0]
        wanted.discard(gone)
        await holder.rebalance()
        await until(lambda: gone not in a.running, [a])
        assert (await pg.leases.get(gone)) is not None
        assert [lease.name for lease in await pg.leases.holders([gone])] == []
