"""Signals: delivered on commit only, to every instance; listening survives a lost
connection and says so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from storage.facade import Storage
from storage.signals import PgSignals
from tests.storage.conftest import PG_URL, Target

BOUND = 5.0


class Inbox:
    def __init__(self) -> None:
        self.items: asyncio.Queue[str] = asyncio.Queue()

    def __call__(self, payload: str) -> None:
        self.items.put_nowait(payload)

    async def next(self) -> str:
        return await asyncio.wait_for(self.items.get(), BOUND)


async def test_signal_delivered_after_commit_never_after_rollback(store: Storage) -> None:
    inbox = Inbox()
    store.signals.listen("jobs", inbox)
    await store.signals.start()
    with pytest.raises(RuntimeError):
        async with store.db.transaction() as session:
            await store.signals.notify_in(session, "jobs", "rolled-back")
            raise RuntimeError("abort")
    async with store.db.transaction() as session:
        await store.signals.notify_in(session, "jobs", "kis:k:paper")
    assert await inbox.next() == "kis:k:paper"
    assert inbox.items.empty()


@pytest.fixture
async def second(store: Storage, target: Target) -> AsyncIterator[PgSignals]:
    if target.backend != "postgresql":
        pytest.skip("several instances need PostgreSQL")
    other = PgSignals(PG_URL, schema=target.schema, retry_delay=0.05, keepalive=0.5)
    try:
        yield other
    finally:
        await other.close()


async def test_every_instance_hears_a_signal(store: Storage, second: PgSignals) -> None:
    mine, theirs = Inbox(), Inbox()
    store.signals.listen("outbox", mine)
    second.listen("outbox", theirs)
    await store.signals.start()
    await second.start()
    async with store.db.transaction() as session:
        await store.signals.notify_in(session, "outbox", "7")
    assert await mine.next() == "7"
    assert await theirs.next() == "7"
    await second.notify("outbox", "8")
    assert await mine.next() == "8"


async def test_many_signals_at_once_all_arrive_and_keep_the_connection(
    store: Storage, second: PgSignals
) -> None:
    """NOTIFYs from many tasks at once, while the keep-alive runs (0.5 s here): asyncpg
    does one operation at a time per connection, so unserialised they failed and the
    failed keep-alive dropped the listening connection."""
    heard = Inbox()
    second.listen("jobs", heard)
    await second.start()
    pid = second.server_pid
    for _round in range(4):
        await asyncio.gather(*(second.notify("jobs", str(n)) for n in range(100)))
        assert sorted([await heard.next() for _ in range(100)], key=int) == [
            str(n) for n in range(100)
        ]
        await asyncio.sleep(0.2)  # lets keep-alive passes interleave with the next burst
    assert second.server_pid == pid and second.connected


async def test_lost_listening_connection_comes_back_and_reports_it(
    store: Storage, second: PgSignals
) -> None:
    inbox = Inbox()
    reconnected = asyncio.Event()
    second.listen("leases", inbox)
    second.on_reconnect(reconnected.set)
    await second.start()
    await store.signals.start()
    # PostgreSQL drops the listener's session (a restart or an administrator would).
    pid = second.server_pid
    assert pid is not None
    async with store.db.transaction() as session:
        killed = (
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        ).scalar_one()
    assert killed
    await asyncio.wait_for(reconnected.wait(), BOUND)
    await store.signals.notify("leases", "released")
    assert await inbox.next() == "released"


async def test_channels_of_other_schemas_are_not_heard(store: Storage, second: PgSignals) -> None:
    inbox = Inbox()
    second.listen("jobs", inbox)
    await second.start()
    stranger = PgSignals(PG_URL, schema="another_schema_entirely")
    await stranger.start()
    try:
        await stranger.notify("jobs", "not for you")
    finally:
        await stranger.close()
    await second.notify("jobs", "for you")
    assert await inbox.next() == "for you"
