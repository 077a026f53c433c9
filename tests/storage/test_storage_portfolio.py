"""Storage of SPEC section 15 on SQLite and PostgreSQL: options, the day's limit holds
under concurrency, confirmations decided once, cancel claims, reservation results told
once, and the migration keeping existing rows."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import bindparam, text

from kis.env import Environment
from storage.db import Database
from storage.facade import Storage
from storage.options import LimitName, Limits
from storage.portfolio_records import (
    CancelStatus,
    ConfirmationStatus,
    DecideOutcome,
    ReservationStatus,
)
from storage.records import AlertStatus
from storage.repositories.outbox import OutboxEntry
from storage.types import UtcDateTime

from .conftest import FakeClock, Target

DAY = "2026-01-05"


async def _user(store: Storage, telegram_id: int = 1) -> int:
    return (await store.users.get_or_create(telegram_id, telegram_id)).id


async def _alert(store: Storage, user_id: int, n: int = 1) -> int:
    parsed = {"symbol": "005930", "market": "KRX", "exchange": "KRX", "action": "buy",
              "sizing": {"mode": "quantity", "value": n}, "order_type": "market"}
    result = await store.alerts.accept(user_id, f'{{"n":{n}}}', parsed, f"id-{n}")
    return result.alert_id


# --- options ------------------------------------------------------------------------------


async def test_options_default_off_and_change_one_at_a_time(store: Storage) -> None:
    user_id = await _user(store)
    changed: list[int] = []
    store.options.on_change(changed.append)
    options = await store.options.get(user_id)
    assert not options.confirm and not options.digest and not options.limits.any
    await store.options.set_limit(user_id, LimitName.DAY, "USD", Decimal("300.50"))
    await store.options.set_confirm(user_id, 90)
    await store.options.set_limit(user_id, LimitName.ORDERS, "KRW", Decimal(5))
    options = await store.options.get(user_id)
    assert options.confirm_seconds == 90
    assert options.limits == Limits(day_usd=Decimal("300.50"), orders=5)
    await store.options.set_limit(user_id, LimitName.DAY, "USD", None)
    assert (await store.options.get(user_id)).limits == Limits(orders=5)
    assert changed == [user_id] * 4


def test_raising_is_loosening_a_cap() -> None:
    limits = Limits(order_krw=Decimal(100))
    assert limits.raises(LimitName.ORDER, "KRW", Decimal(101))
    assert limits.raises(LimitName.ORDER, "KRW", None)  # removing it
    assert not limits.raises(LimitName.ORDER, "KRW", Decimal(99))
    assert not limits.raises(LimitName.DAY, "KRW", Decimal(10**9))  # none before: tighter


# --- limit holds --------------------------------------------------------------------------


async def test_concurrent_holds_never_pass_the_caps(store: Storage) -> None:
    user_id = await _user(store)
    alerts = [await _alert(store, user_id, n) for n in range(10)]
    results = await asyncio.gather(*(
        store.limits.hold(user_id=user_id, alert_id=a, market="KRX", day=DAY,
                          amount=Decimal(100_000), max_amount=Decimal(450_000), max_orders=6)
        for a in alerts
    ))
    taken = [r for r in results if r.limit is None]
    assert len(taken) == 4  # the amount cap binds before the orders cap
    assert {r.limit for r in results if r.limit is not None} == {LimitName.DAY}
    used = await store.limits.usage(user_id, "KRX", DAY)
    assert used.orders == 4 and used.bought == 400_000


async def test_a_hold_is_given_back_once_and_an_alert_holds_once(store: Storage) -> None:
    user_id = await _user(store)
    alert = await _alert(store, user_id)
    for _ in range(2):  # a resumed alert does not count twice
        held = await store.limits.hold(user_id=user_id, alert_id=alert, market="US", day=DAY,
                                       amount=Decimal("150.25"), max_amount=None,
                                       max_orders=3)
        assert held.limit is None
    assert (await store.limits.usage(user_id, "US", DAY)).orders == 1
    assert await store.limits.release(alert)
    assert not await store.limits.release(alert)
    used = await store.limits.usage(user_id, "US", DAY)
    assert used.orders == 0 and used.bought == 0


# --- confirmations ------------------------------------------------------------------------


def _entry(chat_id: int) -> OutboxEntry:
    return OutboxEntry(chat_id, "confirm_request", {"kind": "confirm_request"}, f"q:{chat_id}")


async def _asked(store: Storage, seconds: int = 60) -> tuple[int, int]:
    user_id = await _user(store)
    alert = await _alert(store, user_id)
    queued = await store.confirmations.ask(
        alert_id=alert, user_id=user_id, chat_id=1, seconds=seconds,
        notice=lambda cid: OutboxEntry(1, "confirm_request", {"id": cid}, f"q:{cid}"),
    )
    assert queued is not None
    again = await store.confirmations.ask(alert_id=alert, user_id=user_id, chat_id=1,
                                          seconds=seconds, notice=lambda cid: _entry(1))
    assert again is None  # asked once per alert
    asked = await store.confirmations.by_alert(alert)
    assert asked is not None
    alert_record = await store.alerts.get(alert)
    assert alert_record is not None and alert_record.status is AlertStatus.AWAITING
    return asked.id, user_id


async def test_two_presses_decide_once_and_confirming_reopens_the_alert(
    store: Storage,
) -> None:
    confirmation, user_id = await _asked(store)
    first, second = await asyncio.gather(
        store.confirmations.decide(confirmation, user_id, ConfirmationStatus.CONFIRMED),
        store.confirmations.decide(confirmation, user_id, ConfirmationStatus.SKIPPED),
    )
    outcomes = sorted(r.outcome.name for r in (first, second))
    assert outcomes == ["ALREADY", "DECIDED"]
    record = await store.confirmations.get(confirmation)
    assert record is not None
    alert = await store.alerts.get(record.alert_id)
    assert alert is not None
    expected = {ConfirmationStatus.CONFIRMED: AlertStatus.ACCEPTED,
                ConfirmationStatus.SKIPPED: AlertStatus.REFUSED}[record.status]
    assert alert.status is expected
    other = await _user(store, 2)
    denied = await store.confirmations.decide(confirmation, other, ConfirmationStatus.CONFIRMED)
    assert denied.outcome is DecideOutcome.UNKNOWN


async def test_expiry_is_atomic_and_told_once(store: Storage, clock: FakeClock) -> None:
    confirmation, user_id = await _asked(store, seconds=30)
    clock.advance(29)
    assert await store.confirmations.due() == []
    clock.advance(2)
    assert await store.confirmations.due() == [confirmation]
    pressed = await store.confirmations.decide(confirmation, user_id,
                                               ConfirmationStatus.CONFIRMED)
    assert pressed.outcome is DecideOutcome.EXPIRED and pressed.queued is not None
    assert pressed.queued.dedupe_key == f"confirm_expired:{confirmation}"
    assert await store.confirmations.expire(confirmation) == (None, None)
    assert await store.confirmations.due() == []
    alert = await store.alerts.get(pressed.record.alert_id if pressed.record else 0)
    assert alert is not None and alert.status is AlertStatus.REFUSED
    assert alert.reason == "not confirmed within 30 s (confirm mode)"


# --- cancels, reservations ----------------------------------------------------------------


async def _order(store: Storage, user_id: int) -> int:
    alert = await _alert(store, user_id)
    order = await store.orders.create_pending(
        alert, user_id=user_id, environment=Environment.PAPER, symbol="005930", side="buy",
        order_type="limit", quantity=3, price=Decimal(60000),
    )
    return order.id


async def test_a_cancel_is_claimed_once_and_again_only_after_a_refusal(store: Storage) -> None:
    user_id = await _user(store)
    order_id = await _order(store, user_id)
    claims = await asyncio.gather(*(store.cancels.claim(order_id, user_id) for _ in range(3)))
    assert sorted(claims) == [False, False, True]
    await store.cancels.finish(order_id, CancelStatus.REFUSED, "APBK0918")
    assert await store.cancels.claim(order_id, user_id)
    await store.cancels.finish(order_id, CancelStatus.DONE)
    assert not await store.cancels.claim(order_id, user_id)
    assert await store.cancels.statuses([order_id]) == {order_id: CancelStatus.DONE}


async def test_a_reservation_result_is_told_once(store: Storage) -> None:
    user_id = await _user(store)
    alert = await _alert(store, user_id)
    record = await store.reserved.create_pending(
        alert, user_id=user_id, environment=Environment.REAL, symbol="005930", side="buy",
        order_type="market", quantity=2, price=None, entry_date="20260105",
    )
    await store.reserved.record_outcome(record, ReservationStatus.RESERVED, seq="7")
    note = OutboxEntry(1, "reservation", {"kind": "reservation"}, "r:1")
    first = await store.reserved.record_result(record.id, ReservationStatus.EXECUTED,
                                               order_no="0000000001", filled_qty=2,
                                               filled_amount=Decimal(142000), notice=note)
    again = await store.reserved.record_result(record.id, ReservationStatus.EXECUTED,
                                               notice=note)
    assert first is not None and again is None
    done = await store.reserved.get(record.id)
    assert done is not None and done.filled_qty == 2 and done.seq == "7"
    assert await store.reserved.open_for_user(user_id) == []


# --- the migration ------------------------------------------------------------------------


async def test_portfolio_migration_keeps_existing_rows(target: Target, key1: bytes) -> None:
    db = Database.create(target.url, schema=target.schema)
    try:
        await db.migrate("0011")  # the revision before the portfolio tables
        async with db.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO users (id, telegram_id, chat_id, language, active_environment, "
                "paused, webhook_token_hash, webhook_token_enc, created_at, updated_at) VALUES "
                "(1, 42, 42, 'en', 'paper', false, 'h', :enc, :now, :now)"
            ).bindparams(bindparam("now", type_=UtcDateTime())),
                {"enc": os.urandom(8), "now": datetime(2026, 1, 5, tzinfo=UTC)})
        await db.migrate()
        async with db.engine.connect() as conn:
            users = (await conn.execute(text("SELECT telegram_id FROM users"))).scalars().all()
            options = (await conn.execute(text("SELECT count(*) FROM user_options"))).scalar()
        assert list(users) == [42] and options == 0
    finally:
        await db.dispose()
    store = await Storage.open(target.url, [key1], schema=target.schema)
    try:
        assert not (await store.options.get(1)).limits.any  # no row: everything off
    finally:
        await store.close()

