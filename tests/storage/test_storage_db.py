"""Engine set-up, migrations, health ping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

import storage.models  # noqa: F401 - the tables compared against the migrations
from storage.db import Database, alembic_config, head_revision

from .conftest import Target

EXPECTED_TABLES = {
    "alembic_version",
    "users",
    "accounts",
    "key_sets",
    "kis_credentials",
    "alerts",
    "orders",
    "fills",
    "outbox",
    "two_factor_codes",
    "totp_secrets",
    "audit_log",
    "instances",
    "leases",
    "conversations",
    "fill_sessions",
    "web_sessions",
    "rate_buckets",
    "user_options",
    "limit_usage",
    "limit_holds",
    "confirmations",
    "order_cancels",
    "reserved_orders",
    "sale_costs",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_apply_on_empty_database_and_are_idempotent(target: Target) -> None:
    db = Database.create(target.url, schema=target.schema)
    try:
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == set()
        await db.migrate()
        await db.migrate()  # a second start-up changes nothing
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) == EXPECTED_TABLES
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert version == [(head_revision(),)]
            # The migrations create exactly what the models describe.
            assert await conn.run_sync(_diff) == []
        assert await db.ping()
    finally:
        await db.dispose()


async def test_sqlite_pragmas_and_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "moahook.db"
    db = Database.create(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.engine.connect() as conn:
            journal = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
            busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
            sync = (await conn.execute(text("PRAGMA synchronous"))).scalar_one()
        assert (journal, fks, sync) == ("wal", 1, 1)  # synchronous 1 = NORMAL
        assert busy >= 1000
        assert path.parent.is_dir()
    finally:
        await db.dispose()


async def test_ping_false_when_database_unreachable() -> None:
    # Nothing listens on port 1: the health check says so instead of raising.
    db = Database.create("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    try:
        assert await db.ping() is False
    finally:
        await db.dispose()


async def test_migrations_found_via_package_path_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no alembic.ini anywhere near
    db = Database.create(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        await db.migrate()
        async with db.engine.connect() as conn:
            assert "users" in await conn.run_sync(_tables)
    finally:
        await db.dispose()


def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return run


async def test_structured_reasons_migration_keeps_the_reasons_of_earlier_rows(
    target: Target,
) -> None:
    """Rows written by the 0001 schema keep their English reason and get no key: `/log`
    and `/orders` fall back to the text for them."""
    db = Database.create(target.url, schema=target.schema)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0001"))
            now = datetime(2026, 11, 20, 1, tzinfo=UTC)
            await conn.execute(text(
                "INSERT INTO users (id, telegram_id, chat_id, language, active_environment, "
                "paused, webhook_token_hash, webhook_token_enc, created_at, updated_at) "
                "VALUES (1, 11, 11, 'ko', 'paper', false, 'h', :blob, :now, :now)"
            ), {"blob": b"x", "now": now})
            await conn.execute(text(
                "INSERT INTO alerts (id, user_id, received_at, raw_body, body_hash, status, "
                "reason, updated_at) VALUES (1, 1, :now, '{}', 'b', 'failed', "
                "'order failed: [APBK0919] too much', :now)"
            ), {"now": now})
            await conn.execute(text(
                "INSERT INTO orders (id, alert_id, user_id, environment, symbol, side, "
                "order_type, quantity, status, reason, msg_cd, filled_qty, filled_amount, "
                "created_at, updated_at) VALUES (1, 1, 1, 'paper', '005930', 'buy', 'market', "
                "3, 'rejected', '[APBK0919] too much', 'APBK0919', 0, 0, :now, :now)"
            ), {"now": now})
        await db.migrate()
        async with db.engine.connect() as conn:
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert version == [(head_revision(),)]
            assert await conn.run_sync(_diff) == []
            alert = (await conn.execute(text(
                "SELECT status, reason, reason_key, reason_params FROM alerts WHERE id = 1"
            ))).one()
            order = (await conn.execute(text(
                "SELECT status, reason, reason_key, reason_params, msg_cd FROM orders "
                "WHERE id = 1"
            ))).one()
        assert tuple(alert) == ("failed", "order failed: [APBK0919] too much", None, None)
        assert tuple(order) == ("rejected", "[APBK0919] too much", None, None, "APBK0919")
    finally:
        await db.dispose()


async def test_fill_totals_migration_keeps_orders_and_takes_filled_as_notice_totals(
    target: Target,
) -> None:
    """A database made by the previous schema, with a partly filled order: after the
    upgrade the order is unchanged and its notice totals are its filled totals."""
    db = Database.create(target.url, schema=target.schema)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade_to("0001"))
            moment = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
            now: object = moment if target.backend == "postgresql" else moment.isoformat()
            await conn.execute(text(
                "INSERT INTO users (id, telegram_id, chat_id, language, active_environment,"
                " paused, webhook_token_hash, webhook_token_enc, created_at, updated_at)"
                " VALUES (1, 7, 7, 'ko', 'paper', false, 'h', :blob, :now, :now)"
            ), {"blob": b"x", "now": now})
            await conn.execute(text(
                "INSERT INTO alerts (id, user_id, received_at, raw_body, body_hash, status,"
                " updated_at) VALUES (1, 1, :now, '{}', 'b', 'done', :now)"
            ), {"now": now})
            await conn.execute(text(
                "INSERT INTO orders (id, alert_id, user_id, environment, symbol, side,"
                " order_type, quantity, order_no, status, filled_qty, filled_amount,"
                " created_at, updated_at) VALUES (1, 1, 1, 'paper', '005930', 'buy',"
                " 'market', 10, '0000000001', 'partially_filled', 4, 284000, :now, :now)"
            ), {"now": now})
        await db.migrate()
        async with db.engine.connect() as conn:
            row = (await conn.execute(text(
                "SELECT status, filled_qty, filled_amount, notice_qty, notice_amount,"
                " settled_qty FROM orders WHERE id = 1"
            ))).one()
            # Money is stored in ten-thousandths since the markets migration.
            assert tuple(row) == ("partially_filled", 4, 2_840_000_000, 4, 2_840_000_000, 0)
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            assert version == [(head_revision(),)]
    finally:
        await db.dispose()
