"""Money is exact on SQLite and PostgreSQL: scaled integers (0.0001 of the currency),
USD to the sub-penny, SQL sums of fills exact; KRW rows of the old schema migrated."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text

from kis.env import Environment
from storage.db import Database
from storage.facade import Storage
from storage.repositories.orders import Orders

from .conftest import FakeClock, Target

NOW = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)


async def test_usd_prices_and_fill_sums_are_exact(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=7, chat_id=7, language="en")
    alert = await store.alerts.accept(user.id, raw_body="{}", parsed=None,
                                      idempotency_key=None)
    order = await store.orders.create_pending(
        alert.alert_id, user_id=user.id, environment=Environment.PAPER, symbol="AAPL",
        side="buy", order_type="limit", quantity=3, price=Decimal("190.12"),
        market="US", exchange="NASD", currency="USD",
    )
    await store.orders.record_accepted(order, "0000000001", "00950")
    for key, qty, price in (("a", 1, "0.1"), ("b", 1, "0.2"), ("c", 1, "148.0133")):
        await store.fills.record(user.id, Environment.PAPER, "0000000001", quantity=qty,
                                 price=Decimal(price), filled_at=NOW, notice_key=key,
                                 market="US", currency="USD")
    stored = await store.orders.get(order.id)
    assert stored is not None
    assert (stored.market, stored.exchange, stored.currency) == ("US", "NASD", "USD")
    assert stored.price == Decimal("190.12")
    assert stored.filled_qty == 3
    assert stored.filled_amount == Decimal("148.3133")  # 0.1 + 0.2 is exact here
    fills = await store.fills.for_order(order.id)
    assert sorted(f.price for f in fills) == [Decimal("0.1"), Decimal("0.2"),
                                              Decimal("148.0133")]
    assert {f.currency for f in fills} == {"USD"}


async def test_krw_rows_of_the_old_schema_are_migrated(target: Target, key1: bytes) -> None:
    db = Database.create(target.url, schema=target.schema)
    try:
        await db.migrate("0001")
        async with db.engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO users (id, telegram_id, chat_id, language, active_environment, "
                "paused, webhook_token_hash, webhook_token_enc, created_at, updated_at) "
                "VALUES (1, 1, 1, 'ko', 'paper', false, 'h', :blob, :now, :now)"
            ), {"blob": b"x", "now": NOW})
            await conn.execute(text(
                "INSERT INTO alerts (id, user_id, received_at, raw_body, body_hash, status, "
                "updated_at) VALUES (1, 1, :now, '{}', 'b', 'done', :now)"
            ), {"now": NOW})
            await conn.execute(text(
                "INSERT INTO orders (id, alert_id, user_id, environment, symbol, side, "
                "order_type, quantity, price, order_no, status, filled_qty, filled_amount, "
                "created_at, updated_at) VALUES (1, 1, 1, 'paper', '005930', 'buy', 'limit', "
                "3, 71000, '0000000009', 'filled', 3, 212900, :now, :now)"
            ), {"now": NOW})
            await conn.execute(text(
                "INSERT INTO fills (id, user_id, order_id, environment, order_no, quantity, "
                "price, filled_at, notice_key, created_at) VALUES (1, 1, 1, 'paper', "
                "'0000000009', 3, 70966, :now, 'k', :now)"
            ), {"now": NOW})
        await db.migrate()
        order = await Orders(db, FakeClock()).get(1)
        assert order is not None
        assert (order.price, order.filled_amount) == (Decimal(71000), Decimal(212900))
        assert (order.market, order.exchange, order.currency) == ("KRX", "KRX", "KRW")
        async with db.engine.connect() as conn:
            raw = (await conn.execute(text("SELECT price FROM fills"))).scalar_one()
        assert raw == 70966 * 10_000
    finally:
        await db.dispose()
