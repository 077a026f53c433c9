"""Orders (one per alert), fills (each notice once) and the order's totals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kis.env import Environment
from storage.errors import OrderAlreadyExists
from storage.facade import Storage
from storage.records import OrderStatus

FILLED_AT = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)


async def _alert(store: Storage, user_id: int, n: int) -> int:
    return (await store.alerts.accept(user_id, f'{{"n":{n}}}', {"n": n}, f"id-{n}")).alert_id


async def _order(store: Storage, user_id: int, alert_id: int, qty: int = 10) -> int:
    order = await store.orders.create_pending(
        alert_id, user_id=user_id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=qty, name="삼성전자",
    )
    return order.id


async def test_one_order_per_alert(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    alert_id = await _alert(store, user.id, 1)
    order_id = await _order(store, user.id, alert_id)
    with pytest.raises(OrderAlreadyExists) as e:
        await _order(store, user.id, alert_id)
    assert e.value.order_id == order_id
    # Even when racing: exactly one create succeeds.
    other = await _alert(store, user.id, 2)
    results = await asyncio.gather(*(_order(store, user.id, other) for _ in range(10)),
                                   return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, OrderAlreadyExists) for r in results) == 9
    by_alert = await store.orders.by_alert(other)
    assert by_alert is not None and by_alert.status is OrderStatus.PENDING


async def test_lifecycle_and_queries(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    ids = [await _order(store, user.id, await _alert(store, user.id, n)) for n in range(4)]
    sent = await store.orders.mark_sent(ids[0])
    assert sent is not None and sent.status is OrderStatus.SENT and sent.sent_at is not None
    accepted = await store.orders.mark_accepted(ids[0], "0000012345", "91252")
    assert accepted is not None and accepted.status is OrderStatus.ACCEPTED
    assert (accepted.order_no, accepted.branch) == ("0000012345", "91252")
    await store.orders.mark_sent(ids[1])
    await store.orders.mark_unknown(ids[1], "timeout")
    await store.orders.mark_sent(ids[2])
    rejected = await store.orders.mark_rejected(ids[3], "주문가능금액을 초과 했습니다", "APBK0952")
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    assert rejected.msg_cd == "APBK0952"
    assert [o.id for o in await store.orders.unknown_orders()] == [ids[1], ids[2]]
    found = await store.orders.by_order_no(user.id, "0000012345", Environment.PAPER)
    assert found is not None and found.id == ids[0]
    assert await store.orders.by_order_no(user.id, "0000012345", Environment.REAL) is None
    assert [o.id for o in await store.orders.recent(user.id, 10)] == list(reversed(ids))
    assert len(await store.orders.recent(user.id, 2)) == 2
    assert len(await store.orders.since(user.id, FILLED_AT.replace(year=2020))) == 4
    failed = await store.orders.mark_failed(ids[2], "token refused")
    assert failed is not None and failed.status is OrderStatus.FAILED
    assert await store.orders.mark_sent(999_999) is None


async def test_fills_once_per_notice_and_totals(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    order_id = await _order(store, user.id, await _alert(store, user.id, 1), qty=10)
    await store.orders.mark_accepted(order_id, "0000000001", "91252")

    async def fill(qty: int, price: int, key: str) -> tuple[bool, OrderStatus | None]:
        result = await store.fills.record(user.id, Environment.PAPER, "0000000001",
                                          quantity=qty, price=price, filled_at=FILLED_AT,
                                          notice_key=key)
        return result.new, None if result.order is None else result.order.status

    assert await fill(4, 70_000, "n1") == (True, OrderStatus.PARTIALLY_FILLED)
    assert await fill(4, 70_000, "n1") == (False, OrderStatus.PARTIALLY_FILLED)  # repeated
    assert await fill(6, 70_100, "n2") == (True, OrderStatus.FILLED)
    order = await store.orders.get(order_id)
    assert order is not None and order.filled_qty == 10
    assert order.avg_fill_price == Decimal(4 * 70_000 + 6 * 70_100) / 10
    fills = await store.fills.for_order(order_id)
    assert [(f.quantity, f.price) for f in fills] == [(4, 70_000), (6, 70_100)]
    assert fills[0].filled_at == FILLED_AT


async def test_fill_before_order_number_is_linked_later(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    order_id = await _order(store, user.id, await _alert(store, user.id, 1), qty=5)
    await store.orders.mark_sent(order_id)
    early = await store.fills.record(user.id, Environment.PAPER, "0000000077", quantity=5,
                                     price=1000, filled_at=FILLED_AT, notice_key="early")
    assert early.new and early.order is None
    accepted = await store.orders.mark_accepted(order_id, "0000000077", "1")
    assert accepted is not None and accepted.status is OrderStatus.FILLED
    assert accepted.filled_qty == 5
    assert [f.notice_key for f in await store.fills.for_order(order_id)] == ["early"]


@pytest.mark.parametrize("accept", ["mark_accepted", "record_accepted"])
async def test_an_older_days_fill_with_the_same_number_is_not_linked(
    store: Storage, accept: str
) -> None:
    """KIS numbers orders per day: yesterday's unlinked fill 0000000077 is not today's."""
    from datetime import timedelta

    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    order_id = await _order(store, user.id, await _alert(store, user.id, 1), qty=5)
    order = await store.orders.get(order_id)
    assert order is not None
    await store.fills.record(user.id, Environment.PAPER, "0000000077", quantity=5,
                             price=1000, filled_at=order.created_at - timedelta(days=1),
                             notice_key="yesterday")
    if accept == "mark_accepted":
        accepted = await store.orders.mark_accepted(order_id, "0000000077", "1")
    else:
        accepted, _ = await store.orders.record_accepted(order, "0000000077", "1")
    assert accepted is not None and accepted.status is OrderStatus.ACCEPTED
    assert accepted.filled_qty == 0
    assert await store.fills.for_order(order_id) == []


async def test_concurrent_repeats_of_a_fill_count_once(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    order_id = await _order(store, user.id, await _alert(store, user.id, 1), qty=10)
    await store.orders.mark_accepted(order_id, "0000000005", None)
    results = await asyncio.gather(*(
        store.fills.record(user.id, Environment.PAPER, "0000000005", quantity=3, price=100,
                           filled_at=FILLED_AT, notice_key="same") for _ in range(10)))
    assert sum(r.new for r in results) == 1
    order = await store.orders.get(order_id)
    assert order is not None and order.filled_qty == 3


async def test_record_accepted_closes_the_alert_and_queues_the_notice_at_once(
    store: Storage,
) -> None:
    from storage.records import AlertStatus
    from storage.repositories.outbox import OutboxEntry

    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    alert_id = await _alert(store, user.id, 1)
    pending = await store.orders.create_pending(
        alert_id, user_id=user.id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=5,
    )
    assert pending == await store.orders.get(pending.id)  # built without a read back
    early = await store.fills.record(user.id, Environment.PAPER, "0000000088", quantity=2,
                                     price=1000, filled_at=FILLED_AT, notice_key="early")
    assert early.order is None
    entry = OutboxEntry(1, "order_accepted", {"order_no": "0000000088"}, "acc:88")
    order, queued = await store.orders.record_accepted(pending, "0000000088", "1",
                                                       notice=entry)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.filled_qty == 2
    assert order.sent_at is not None
    assert order == await store.orders.get(pending.id)
    assert queued is not None and queued.dedupe_key == "acc:88"
    alert = await store.alerts.get(alert_id)
    assert alert is not None and alert.status is AlertStatus.DONE
    assert [m.dedupe_key for m in await store.outbox.due()] == ["acc:88"]
    # recorded again (a reconciled order): same number, the notice is not queued twice
    again, repeat = await store.orders.record_accepted(order, "0000000088", "1", notice=entry)
    assert repeat is None and again.filled_qty == 2
    assert again == await store.orders.get(pending.id)
    assert [m.dedupe_key for m in await store.outbox.due()] == ["acc:88"]


async def test_record_outcome_and_alert_finish(store: Storage) -> None:
    from storage.records import AlertStatus
    from storage.repositories.outbox import OutboxEntry

    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    alert_id = await _alert(store, user.id, 1)
    pending = await store.orders.create_pending(
        alert_id, user_id=user.id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=5,
    )
    unknown, queued = await store.orders.record_outcome(
        pending, OrderStatus.UNKNOWN, "no answer",
        notice=OutboxEntry(1, "order_failed", {}, "unknown:1"),
    )
    assert unknown.status is OrderStatus.UNKNOWN and unknown.sent_at is not None
    assert queued is not None
    assert [o.id for o in await store.orders.unknown_orders()] == [pending.id]
    alert = await store.alerts.get(alert_id)
    assert alert is not None and alert.status is AlertStatus.ACCEPTED  # still open
    failed, again = await store.orders.record_outcome(
        unknown, OrderStatus.FAILED, "not placed", alert_status=AlertStatus.FAILED,
        alert_reason="order failed: not placed",
        notice=OutboxEntry(1, "order_failed", {}, "unknown:1"),  # same key: not twice
    )
    assert failed == await store.orders.get(pending.id) and again is None
    alert = await store.alerts.get(alert_id)
    assert alert is not None and alert.status is AlertStatus.FAILED
    with pytest.raises(ValueError, match="accepted"):
        await store.orders.record_outcome(failed, OrderStatus.ACCEPTED, None)

    other = await _alert(store, user.id, 2)
    message = await store.alerts.finish(
        other, AlertStatus.REFUSED, "paused",
        notice=OutboxEntry(1, "order_refused", {}, "refused:2"), user_id=user.id,
    )
    assert message is not None and message.user_id == user.id
    refused = await store.alerts.get(other)
    assert refused is not None and refused.status is AlertStatus.REFUSED
    assert await store.alerts.finish(other, AlertStatus.REFUSED, "paused") is None
