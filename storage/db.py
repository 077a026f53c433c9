"""The async engine, sessions, and schema migrations.

SQLite allows one writer at a time even in WAL mode. Rather than letting writers
collide inside the driver (and fail with "database is locked" when a read-then-write
transaction loses the race), write transactions of this process queue on one
asyncio lock. PostgreSQL needs no such lock: repositories use row locks, advisory
locks and unique constraints there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS: Final = 30_000
PING_TIMEOUT_S: Final = 2.0
# Arbitrary constant naming moahook's migration lock among PostgreSQL advisory locks.
_MIGRATION_LOCK_ID: Final = 0x6D6F6168


def alembic_config() -> Config:
    """Alembic's configuration built in code: works from an installed package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _sqlite_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # DB-API connection
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Database:
    """One engine and its session factory. Create with `Database.create(url)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    @classmethod
    def create(cls, url: str, *, schema: str | None = None) -> Database:
        """`schema` (PostgreSQL only) puts every table in that schema via `search_path`."""
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            if schema is not None:
                raise ValueError("schema= is only supported on PostgreSQL")
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(parsed)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        elif parsed.get_backend_name() == "postgresql":
            connect_args: dict[str, object] = {}
            if schema is not None:
                connect_args["server_settings"] = {"search_path": schema}
            engine = create_async_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
        else:
            raise ValueError(
                f"unsupported database {parsed.get_backend_name()!r}: "
                "use sqlite+aiosqlite:/// or postgresql+asyncpg://"
            )
        return cls(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A plain session, for reads; the caller commits if it writes."""
        async with self._sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A short write transaction: committed on success, rolled back on error.

        Never await other I/O (KIS, Telegram) inside it.
        """
        async with self._writer(), self._sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    async def lock(self, session: AsyncSession, namespace: int, key: int) -> None:
        """Serialises transactions on (namespace, key) until commit, across processes.

        SQLite needs nothing: `transaction()` already admits one writer at a time.
        """
        if self.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                {"ns": namespace, "key": key % (2**31)},
            )

    async def migrate(self) -> None:
        """Brings the schema to the newest revision (idempotent)."""
        async with self._writer(), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
            await conn.run_sync(_upgrade_head)

    async def ping(self) -> bool:
        """True when the database answers a trivial query (health checks)."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S), self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("database ping failed: %s", type(exc).__name__)
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def _upgrade_head(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
