"""Engine set-up, migrations, health ping."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

import storage.models  # noqa: F401 - the tables compared against the migrations
from storage.db import Database, alembic_config

from .conftest import Target

EXPECTED_TABLES = {
    "alembic_version",
    "users",
    "key_sets",
    "kis_credentials",
    "alerts",
    "orders",
    "fills",
    "outbox",
    "two_factor_codes",
    "audit_log",
    "instances",
    "leases",
    "conversations",
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
            assert version == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]
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
