"""The SQLite writer lock (urgent writers first) and `Database.write_one`."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text
from sqlmodel import col

from storage.db import Database, WriterLock, in_transaction
from storage.facade import Storage
from storage.models import Alert
from storage.records import AlertStatus

WAIT = 5.0


async def _queued(lock: WriterLock, order: list[str], name: str, *, urgent: bool) -> None:
    async with lock.hold(urgent=urgent):
        order.append(name)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_urgent_waiters_go_before_the_others_queued() -> None:
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    tasks = [
        asyncio.create_task(_queued(lock, order, "normal-1", urgent=False)),
        asyncio.create_task(_queued(lock, order, "normal-2", urgent=False)),
        asyncio.create_task(_queued(lock, order, "urgent-1", urgent=True)),
        asyncio.create_task(_queued(lock, order, "urgent-2", urgent=True)),
    ]
    await _settle()
    assert order == [] and lock.locked
    lock.release()
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    assert order == ["urgent-1", "urgent-2", "normal-1", "normal-2"]
    assert not lock.locked


async def test_a_cancelled_waiter_never_holds_the_lock_nor_blocks_it() -> None:
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_queued(lock, order, "gone", urgent=True))
    later = asyncio.create_task(_queued(lock, order, "later", urgent=False))
    await _settle()
    gone.cancel()
    await _settle()
    lock.release()
    await asyncio.wait_for(later, WAIT)
    assert gone.cancelled() and order == ["later"] and not lock.locked


async def test_cancelled_just_as_the_lock_was_handed_over_passes_it_on() -> None:
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    first = asyncio.create_task(_queued(lock, order, "first", urgent=False))
    second = asyncio.create_task(_queued(lock, order, "second", urgent=False))
    await _settle()
    lock.release()  # handed to `first`, which has not run yet
    first.cancel()
    await asyncio.wait_for(second, WAIT)
    assert first.cancelled() and order == ["second"] and not lock.locked


def test_releasing_a_free_lock_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        WriterLock().release()


@pytest.fixture
async def file_db(tmp_path: Path) -> Storage:
    return await Storage.open(f"sqlite+aiosqlite:///{tmp_path}/w.db", [secrets.token_bytes(32)])


_INSERT = insert(Alert).returning(col(Alert.id), col(Alert.status))


@pytest.mark.parametrize("micro", [250_000, 0])  # 0: a whole second, formatted like the ORM
async def test_write_one_stores_what_the_orm_reads_back(file_db: Storage, micro: int) -> None:
    storage = file_db
    try:
        user = await storage.users.get_or_create(1, 1)
        at = datetime(2026, 1, 5, 0, 30, 1, micro, tzinfo=UTC)
        values: dict[str, object] = {
            "user_id": user.id, "received_at": at, "raw_body": '{"a":"한"}',
            "parsed": {"a": "한", "n": [1, 2]}, "idempotency_key": None,
            "body_hash": "h", "status": AlertStatus.ACCEPTED.value, "updated_at": at,
        }
        rows = await storage.db.write_one(_INSERT, values)
        assert len(rows) == 1 and rows[0][1] == "accepted"
        record = await storage.alerts.get(rows[0][0])
        assert record is not None
        assert record.received_at == at and record.received_at.tzinfo is not None
        assert record.parsed == {"a": "한", "n": [1, 2]}
        assert record.raw_body == '{"a":"한"}' and record.idempotency_key is None
        # the same row through the ORM path stores the same text in every column
        async with storage.db.transaction() as session:
            orm_id = (await session.execute(_INSERT, values)).scalar_one()
        async with storage.db.session() as session:
            stored = (await session.execute(
                text("SELECT received_at, parsed, updated_at FROM alerts WHERE id IN (:a, :b)"
                     " ORDER BY id"), {"a": rows[0][0], "b": orm_id},
            )).all()
        assert stored[0] == stored[1]
    finally:
        await storage.close()


async def test_write_one_is_durable_at_once_and_enforces_foreign_keys(file_db: Storage) -> None:
    storage = file_db
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            await storage.db.write_one(_INSERT, {
                "user_id": 999, "received_at": datetime.now(UTC), "raw_body": "{}",
                "parsed": None, "idempotency_key": None, "body_hash": "h",
                "status": "accepted", "updated_at": datetime.now(UTC),
            })
        user = await storage.users.get_or_create(1, 1)
        result = await storage.alerts.accept(user.id, "{}", {}, "k")
        # another connection (a fresh engine) sees it: committed, not left in a transaction
        other = Database.create(str(storage.db.engine.url))
        try:
            async with other.session() as session:
                found = (await session.execute(
                    select(col(Alert.id)).where(col(Alert.id) == result.alert_id)
                )).scalar_one_or_none()
            assert found == result.alert_id
        finally:
            await other.dispose()
    finally:
        await storage.close()


async def test_write_one_waits_for_the_writer_lock(file_db: Storage) -> None:
    """A transaction in progress is never interleaved with: write_one queues behind it."""
    storage = file_db
    try:
        user = await storage.users.get_or_create(1, 1)
        entered, release = asyncio.Event(), asyncio.Event()

        async def long_transaction() -> None:
            async with storage.db.transaction() as session:
                await session.execute(text("UPDATE users SET paused = 1"))
                entered.set()
                await release.wait()

        holder = asyncio.create_task(long_transaction())
        await asyncio.wait_for(entered.wait(), WAIT)
        accept = asyncio.create_task(storage.alerts.accept(user.id, "{}", {}, "k"))
        await _settle()
        assert not accept.done()
        release.set()
        await asyncio.wait_for(holder, WAIT)
        assert not (await asyncio.wait_for(accept, WAIT)).duplicate
    finally:
        await storage.close()


async def test_write_direct_transaction_is_all_or_nothing(file_db: Storage) -> None:
    storage = file_db
    try:
        user = await storage.users.get_or_create(1, 1)

        def half_then_fail(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE users SET paused = 1 WHERE id = ?", (user.id,))
            raise sqlite3.IntegrityError("stop here")

        with pytest.raises(sqlite3.IntegrityError):
            await storage.db.write_direct(lambda c: in_transaction(c, half_then_fail))
        # rolled back, and the connection is usable (not left inside a transaction)
        paused = await storage.db.write_direct(
            lambda c: c.execute("SELECT paused FROM users WHERE id = ?", (user.id,)).fetchall()
        )
        assert paused == [(0,)]
        assert await storage.db.write_direct(lambda c: c.in_transaction) is False
    finally:
        await storage.close()


async def test_a_batch_of_accepts_is_one_trip_to_the_direct_connection(
    file_db: Storage,
) -> None:
    """Concurrent accepts share one transaction on the direct connection, and repeats
    inside it are recognised exactly as if they had come one after another."""
    storage = file_db
    try:
        user = await storage.users.get_or_create(1, 1)
        trips: list[int] = []
        write_direct = storage.db.write_direct

        async def counting(work: Any, *, urgent: bool = False) -> Any:
            trips.append(1)
            return await write_direct(work, urgent=urgent)

        storage.db.write_direct = counting  # type: ignore[method-assign]  # spy
        bodies = [f'{{"n": {i % 10}}}' for i in range(40)]
        results = await asyncio.wait_for(asyncio.gather(
            *(storage.alerts.accept(user.id, body, {}, None) for body in bodies),
            *(storage.alerts.accept(user.id, "{}", {}, f"k{i % 5}") for i in range(20)),
        ), WAIT)
        assert len(trips) <= 2  # the first alert alone, then everything queued behind it
        fresh = [r for r in results if not r.duplicate]
        assert len(fresh) == 15 and len({r.alert_id for r in fresh}) == 15
        first_by_body = {bodies[i]: results[i].alert_id for i in range(10)}
        assert all(results[i].alert_id == first_by_body[bodies[i]] for i in range(40))
        assert all(results[40 + i].alert_id == results[40 + i % 5].alert_id for i in range(20))
    finally:
        await storage.close()
