"""Storage fixtures: every repository test runs on SQLite, and on PostgreSQL too when
MOAHOOK_TEST_DATABASE_URL is set (each test in its own fresh schema)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import Database
from storage.facade import Storage

PG_URL = os.environ.get("MOAHOOK_TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


@dataclass(frozen=True)
class Target:
    backend: str
    url: str
    schema: str | None
    sqlite_path: Path | None


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(params=BACKENDS)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sqlite":
        path = tmp_path / "db" / "moahook.db"
        yield Target("sqlite", f"sqlite+aiosqlite:///{path}", None, path)
        return
    schema = f"moahook_test_{secrets.token_hex(6)}"
    admin = Database.create(PG_URL)
    try:
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield Target("postgresql", PG_URL, schema, None)
    finally:
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@pytest.fixture
def key1() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def key2() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(target: Target, key1: bytes, clock: FakeClock) -> AsyncIterator[Storage]:
    opened = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        yield opened
    finally:
        await opened.close()
