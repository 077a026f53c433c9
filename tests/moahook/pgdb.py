"""A fresh PostgreSQL database per test (tests' helper): processes started by a test
connect with a plain URL, so each test gets a database of its own, dropped after."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]  # no type information shipped
import pytest
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("MOAHOOK_TEST_DATABASE_URL", "").strip()


def require_postgresql() -> str:
    if not PG_URL:
        pytest.skip("needs PostgreSQL (MOAHOOK_TEST_DATABASE_URL)")
    return PG_URL


@contextlib.asynccontextmanager
async def fresh_database(server: str | None = None) -> AsyncIterator[str]:
    """Yields a `postgresql+asyncpg://` URL of an empty database on `server` (a URL of
    any database there; the tests' server unless given)."""
    base = make_url(server or require_postgresql())
    name = f"moahook_t_{secrets.token_hex(5)}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
