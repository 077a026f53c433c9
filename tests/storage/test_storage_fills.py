"""Fills with their chat notice (`record_and_queue`): on a SQLite file its own one-hop
transaction, elsewhere an ORM session; both must store and answer the same."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from kis.env import Environment
from storage.facade import Storage
from storage.records import FillResult, OrderStatus, OutboxMessage, OutboxStatus
from storage.repositories.outbox import OutboxEntry

from .conftest import FakeClock

FILLED_AT = datetime(2026, 1, 5, 1, 0, 0, 250_000, tzinfo=UTC)
ON_THE_SECOND = datetime(2026, 1, 5, 1, 0, 1, tzinfo=UTC)


async def _accepted_order(store: Storage, user_id: int, order_no: str, qty: int) -> int:
    alert = await store.alerts.accept(user_id, f'{{"o":"{order_no}"}}', {"o": order_no}, order_no)
    order = await store.orders.create_pending(
        alert.alert_id, user_id=user_id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=qty, name="삼성전자",
    )
    await store.orders.mark_accepted(order.id, order_no, "91252")
    return order.id


def _notice(
    chat_id: int, key: str
) -> tuple[list[FillResult], Callable[[FillResult], OutboxEntry]]:
    seen: list[FillResult] = []

    def notice(result: FillResult) -> OutboxEntry:
        seen.append(result)
        order = result.order
        filled = None if order is None else order.filled_qty
        return OutboxEntry(chat_id, "order_filled", {"filled": filled, "name": "삼성전자"}, key)

    return seen, notice


async def _fill(
    store: Storage, user_id: int, order_no: str, qty: int, key: str, *, chat_id: int = 7,
    at: datetime = FILLED_AT,
) -> tuple[FillResult, OutboxMessage | None, list[FillResult]]:
    seen, notice = _notice(chat_id, f"fill:{key}")
    result, queued = await store.fills.record_and_queue(
        user_id, Environment.PAPER, order_no, quantity=qty, price=70_000, filled_at=at,
        notice_key=key, notice=notice,
    )
    return result, queued, seen


async def test_fills_update_the_order_and_queue_their_notice(
    store: Storage, clock: FakeClock
) -> None:
    user = await store.users.get_or_create(telegram_id=7, chat_id=7)
    order_id = await _accepted_order(store, user.id, "0000000101", qty=10)

    first, queued, seen = await _fill(store, user.id, "0000000101", 4, "a")
    assert first.new and first.order is not None
    assert first.order.status is OrderStatus.PARTIALLY_FILLED and first.order.filled_qty == 4
    assert seen == [first]  # the notice is built from the order after the update
    assert first.order == await store.orders.get(order_id)  # as stored, types and all
    assert first.order.updated_at == clock()
    assert queued is not None and queued.payload == {"filled": 4, "name": "삼성전자"}
    assert queued.status is OutboxStatus.PENDING and queued.user_id == user.id
    (due,) = await store.outbox.due(10)
    assert due == queued  # handed to the notifier exactly as stored

    second, _, _ = await _fill(store, user.id, "0000000101", 6, "b")
    assert second.order is not None and second.order.status is OrderStatus.FILLED
    assert second.order.filled_amount == 10 * 70_000
    assert second.order == await store.orders.get(order_id)
    fills = await store.fills.for_order(order_id)
    assert [(f.quantity, f.notice_key, f.filled_at) for f in fills] == [
        (4, "a", FILLED_AT), (6, "b", FILLED_AT)
    ]


async def test_a_repeated_notice_changes_nothing_and_queues_nothing(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=8, chat_id=8)
    order_id = await _accepted_order(store, user.id, "0000000102", qty=10)
    await _fill(store, user.id, "0000000102", 3, "same")
    again, queued, seen = await _fill(store, user.id, "0000000102", 3, "same")
    assert not again.new and queued is None and seen == []
    assert again.order == await store.orders.get(order_id)  # the order as it stands
    assert again.order is not None and again.order.filled_qty == 3
    assert await store.outbox.pending_count() == 1


async def test_concurrent_repeats_store_one_fill_and_one_notice(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=9, chat_id=9)
    order_id = await _accepted_order(store, user.id, "0000000103", qty=10)
    results = await asyncio.gather(
        *(_fill(store, user.id, "0000000103", 2, "dup") for _ in range(8))
    )
    assert sum(result.new for result, _, _ in results) == 1
    assert sum(queued is not None for _, queued, _ in results) == 1
    order = await store.orders.get(order_id)
    assert order is not None and order.filled_qty == 2
    assert await store.outbox.pending_count() == 1


async def test_a_failing_notice_stores_nothing(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=10, chat_id=10)
    order_id = await _accepted_order(store, user.id, "0000000104", qty=10)

    def broken(_result: FillResult) -> OutboxEntry:
        raise RuntimeError("formatting failed")

    with pytest.raises(RuntimeError, match="formatting failed"):
        await store.fills.record_and_queue(
            user.id, Environment.PAPER, "0000000104", quantity=5, price=1, filled_at=FILLED_AT,
            notice_key="k", notice=broken,
        )
    order = await store.orders.get(order_id)
    assert order is not None and order.filled_qty == 0  # rolled back with the fill
    assert await store.fills.for_order(order_id) == []
    # The same notice again (KIS resends) is stored as new.
    result, queued, _ = await _fill(store, user.id, "0000000104", 5, "k")
    assert result.new and queued is not None


async def test_a_fill_before_its_order_number_is_kept_and_linked_later(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=11, chat_id=11)
    result, queued, seen = await _fill(store, user.id, "0000000105", 1, "early")
    assert result.new and result.order is None and seen == [result]
    assert queued is not None and queued.payload == {"filled": None, "name": "삼성전자"}
    order_id = await _accepted_order(store, user.id, "0000000105", qty=1)
    order = await store.orders.get(order_id)
    assert order is not None and order.status is OrderStatus.FILLED
    assert [f.notice_key for f in await store.fills.for_order(order_id)] == ["early"]


async def test_stored_values_match_the_orm_path_exactly(store: Storage) -> None:
    """The same timestamps written by `record` (ORM) and `record_and_queue` are stored
    as the same text on SQLite, so range queries and ordering hold across both."""
    user = await store.users.get_or_create(telegram_id=12, chat_id=12)
    await _accepted_order(store, user.id, "0000000106", qty=10)
    for at in (FILLED_AT, ON_THE_SECOND):
        await store.fills.record(user.id, Environment.PAPER, "0000000106", quantity=1,
                                 price=1, filled_at=at, notice_key=f"orm-{at.second}")
        await _fill(store, user.id, "0000000106", 1, f"one-{at.second}", at=at)
    async with store.db.session() as session:
        rows = (await session.execute(text(
            "SELECT notice_key, filled_at, created_at FROM fills ORDER BY id"
        ))).all()
    by_key = {key: (filled, created) for key, filled, created in rows}
    for second in (0, 1):
        assert by_key[f"orm-{second}"] == by_key[f"one-{second}"]


def _settled(chat_id: int) -> Callable[..., OutboxEntry]:
    def notice(before: object, after: object) -> OutboxEntry:
        return OutboxEntry(chat_id, "order_filled", {"settled": True}, f"settled:{chat_id}")

    return notice


async def test_settlement_records_what_notices_missed_once_and_late_notices_not_again(
    store: Storage,
) -> None:
    """KIS's daily executions show 10 filled where the notices said 4: the order shows 10,
    once (the same figure again changes nothing); the late notice for the counted lots
    does not count again; a fill beyond it counts."""
    user = await store.users.get_or_create(7, 7)
    order_id = await _accepted_order(store, user.id, "0000000011", 12)
    await _fill(store, user.id, "0000000011", 4, "a")
    after, queued = await store.orders.record_settlement(
        order_id, 10, 10 * 70_000, _settled(7)
    )
    assert after is not None and queued is not None
    assert (after.filled_qty, after.notice_qty, after.settled_qty) == (10, 4, 10)
    assert after.status is OrderStatus.PARTIALLY_FILLED
    again, none = await store.orders.record_settlement(order_id, 10, 10 * 70_000, _settled(7))
    assert again is None and none is None
    late, _, _ = await _fill(store, user.id, "0000000011", 6, "b")
    assert late.new and not late.counted  # its chat notice is the caller's to skip
    assert late.order is not None and late.order.filled_qty == 10
    beyond, _, _ = await _fill(store, user.id, "0000000011", 2, "c")
    assert beyond.counted
    order = await store.orders.get(order_id)
    assert order is not None
    assert (order.filled_qty, order.notice_qty, order.status) == (12, 12, OrderStatus.FILLED)
    assert order.filled_amount == 12 * 70_000


async def test_settlement_and_notices_at_once_never_count_twice(store: Storage) -> None:
    """Settlements racing fill notices for one order: the result is the larger figure."""
    user = await store.users.get_or_create(8, 8)
    order_id = await _accepted_order(store, user.id, "0000000012", 30)
    await asyncio.gather(
        *(_fill(store, user.id, "0000000012", 1, f"n{i}") for i in range(10)),
        *(store.orders.record_settlement(order_id, k, k * 70_000, _settled(8))
          for k in (3, 6, 9)),
    )
    order = await store.orders.get(order_id)
    assert order is not None and order.notice_qty == 10
    assert order.filled_qty == 10 and order.filled_amount == 10 * 70_000
