"""The async engine, sessions, and schema migrations.

SQLite allows one writer at a time even in WAL mode. Rather than letting writers
collide inside the driver (and fail with "database is locked" when a read-then-write
transaction loses the race), write transactions of this process queue on one
asyncio lock; `urgent` writers (the webhook's alert writes, which an HTTP answer
waits on) go ahead of the others queued. PostgreSQL needs no such lock:
repositories use row locks, advisory locks and unique constraints there.

`write_one` runs one prebuilt statement as a transaction of its own. On a SQLite
file that is a single hand-off to a dedicated autocommit connection (execute, fetch
and commit in one trip to the connection's thread) instead of the half-dozen trips of
a session; elsewhere it is an ordinary `transaction()`. `write_direct` runs a whole
transaction of several statements there in one trip (the alert intake's batches).
Every trip to another thread costs the event loop a hand-off and, when the loop is
busy, a wait for the GIL: under load, fewer trips is what keeps answers fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import Compiled, SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import ReturnsRows

from storage.errors import DatabaseUnavailable, MigrationFailed

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS: Final = 30_000
PING_TIMEOUT_S: Final = 2.0
CONNECT_TIMEOUT_S: Final = 15.0
# Arbitrary constant naming moahook's migration lock among PostgreSQL advisory locks.
_MIGRATION_LOCK_ID: Final = 0x6D6F6168


def alembic_config() -> Config:
    """Alembic's configuration built in code: works from an installed package."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def default_database_url(data_dir: Path) -> str:
    """The SQLite file in the data directory (MOAHOOK_DATABASE_URL's default)."""
    return f"sqlite+aiosqlite:///{(data_dir / 'moahook.db').as_posix()}"


def database_exists(url: str) -> bool:
    """False only for a SQLite file that is not there yet (a server is assumed to exist)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return True
    return parsed.database == ":memory:" or Path(parsed.database).exists()


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


def _sqlite_pragmas(dbapi_connection: object, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # DB-API connection
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class WriterLock:
    """One holder at a time, FIFO within a priority; urgent waiters go first.

    Not reentrant. A waiter cancelled while queued never holds the lock."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return (
            f"WriterLock(held={self._held}, urgent={len(self._urgent)}, "
            f"normal={len(self._normal)})"
        )

    @property
    def locked(self) -> bool:
        return self._held

    async def acquire(self, *, urgent: bool = False) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._normal
        queue.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        if not self._held:
            raise RuntimeError("WriterLock released while not held")
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the lock passes straight to it
                    return
        self._held = False

    @contextlib.asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self.acquire(urgent=urgent)
        try:
            yield
        finally:
            self.release()


class DirectSqlite:
    """A plain `sqlite3` connection in autocommit mode, owned by one thread: each `run`
    is exactly one hand-off to that thread, however many statements it executes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-direct")
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"DirectSqlite(open={self._conn is not None})"

    async def run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(connection)` on the connection's thread. If the caller is cancelled the
        work still finishes before the cancellation goes on (the caller's writer lock
        must cover it)."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._call, work)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.wait({future})
            raise

    def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._conn is None:
            # isolation_level=None: autocommit; `work` opens its own transactions.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return work(self._conn)

    async def close(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        finally:
            self._executor.shutdown(wait=False)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], _T]) -> _T:
    """`work` inside `BEGIN IMMEDIATE … COMMIT` (rolled back if it raises); for
    `Database.write_direct`."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for SQLite: its SQL, how to turn parameters into `?`s and,
    for the rows it returns (SELECT, RETURNING), how to convert each column."""

    compiled: Compiled
    sql: str
    names: tuple[str, ...]
    processors: Mapping[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...] = ()

    def positional(self, params: Mapping[str, object]) -> tuple[object, ...]:
        values = self.compiled.construct_params(dict(params)) or {}
        out: list[object] = []
        for name in self.names:
            value = values[name]
            process = self.processors.get(name)
            out.append(process(value) if process is not None else value)
        return tuple(out)

    def row(self, raw: Sequence[object]) -> list[object]:
        """A returned row's values as the ORM reads them (the column types convert)."""
        return [v if p is None else p(v) for v, p in zip(raw, self.results, strict=True)]


class Database:
    """One engine and its session factory. Create with `Database.create(url)`."""

    def __init__(self, engine: AsyncEngine, *, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema  # PostgreSQL: the schema every table lives in (tests)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._write_lock = WriterLock() if self.is_sqlite else None
        database = engine.url.database or ""
        # A second connection to a private in-memory database would see another database.
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        self._direct_path = database if self.is_sqlite and not in_memory else None
        self._direct = DirectSqlite(self._direct_path) if self._direct_path else None
        self._prepared: dict[tuple[int, frozenset[str]], tuple[ClauseElement, Prepared]] = {}

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
            return cls(engine, schema=schema)
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
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A short write transaction: committed on success, rolled back on error.

        `urgent`: on SQLite, queue ahead of the other writers waiting (something is
        answered only once this is written). Never await other I/O (KIS, Telegram)
        inside it.
        """
        async with self._writer(urgent), self._sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def _writer(self, urgent: bool = False) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock.hold(urgent=urgent):
            yield

    async def write_one(
        self, statement: UpdateBase, params: Mapping[str, object], *, urgent: bool = False
    ) -> Sequence[tuple[Any, ...]]:
        """Runs one write statement (an `INSERT … RETURNING`, an `UPDATE`) as its own
        transaction and returns the rows it returned, as the driver gives them (no
        result type processing: use it for ids and plain columns).

        Pass the same statement object every time (build it once): its compiled form
        is kept. On a SQLite file this is one trip to the driver; errors are the
        driver's (`sqlite3.Error`)."""
        if self._direct_path is None:
            async with self.transaction(urgent=urgent) as session:
                conn = await session.connection()
                result = await conn.execute(statement, dict(params))
                return [tuple(row) for row in result.all()] if result.returns_rows else []
        prepared = self.prepare(statement, frozenset(params))
        sql, values = prepared.sql, prepared.positional(params)
        rows = await self.write_direct(lambda conn: conn.execute(sql, values).fetchall(),
                                       urgent=urgent)
        return [tuple(row) for row in rows]

    @property
    def has_direct(self) -> bool:
        """True on a SQLite file: `write_direct` can be used."""
        return self._direct is not None

    async def write_direct(
        self, work: Callable[[sqlite3.Connection], _T], *, urgent: bool = False
    ) -> _T:
        """SQLite file only: `work(connection)` under the writer lock, in one trip to the
        dedicated autocommit connection's thread. `work` runs there: it must only do
        database work, and wraps several statements in `in_transaction`. Statements
        come from `prepare`."""
        if self._direct is None:
            raise RuntimeError("write_direct needs a SQLite file database")
        async with self._writer(urgent):
            return await self._direct.run(work)

    def prepare(self, statement: ClauseElement, keys: frozenset[str]) -> Prepared:
        """`statement` compiled once for the direct SQLite connection; `keys` are the
        parameter names that will be passed (they pick an INSERT's columns). Rows it
        returns convert with `Prepared.row`."""
        cached = self._prepared.get((id(statement), keys))
        if cached is not None and cached[0] is statement:
            return cached[1]
        dialect = self.engine.dialect
        # As SQLAlchemy compiles for execution: the parameter names pick an INSERT's columns.
        compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
        if not isinstance(compiled, SQLCompiler):
            raise TypeError("prepare takes SQL statements")
        names = tuple(compiled.positiontup or ())
        processors: dict[str, Callable[[Any], Any]] = {}
        for name in set(names):
            bind = compiled.binds.get(name)
            # The type's form for this dialect converts, as SQLAlchemy does when executing
            # (SQLite datetimes as the ORM writes them, not the sqlite3 default adapter).
            if bind is None:
                continue
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        # The returned columns' types convert results, as SQLAlchemy does when fetching.
        returned = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
        results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in returned
        )
        prepared = Prepared(compiled, str(compiled), names, processors, results)
        self._prepared[(id(statement), keys)] = (statement, prepared)  # keeps it alive
        return prepared

    async def lock(self, session: AsyncSession, namespace: int, key: int) -> None:
        """Serialises transactions on (namespace, key) until commit, across processes.

        SQLite needs nothing: `transaction()` already admits one writer at a time.
        """
        if self.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                {"ns": namespace, "key": key % (2**31)},
            )

    async def migrate(self, revision: str = "head") -> None:
        """Brings the schema to `revision`, the newest by default (idempotent).

        Raises `DatabaseUnavailable` when the database cannot be reached and
        `MigrationFailed` when a revision fails (its transaction is rolled back)."""
        async with self._writer(), self._connected() as conn:
            try:
                async with conn.begin():
                    if self.dialect == "postgresql":
                        await conn.execute(
                            text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID}
                        )
                    await conn.run_sync(_upgrade, revision)
            except Exception as exc:
                raise MigrationFailed(
                    f"migrating the database to revision "
                    f"{head_revision() if revision == 'head' else revision} failed: "
                    f"{_first_line(exc)}"
                ) from exc

    async def current_revision(self) -> str | None:
        """The schema's revision (None: an empty database); `DatabaseUnavailable` if the
        database cannot be reached."""
        async with self._connected() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                conn = await self.engine.connect()
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            raise DatabaseUnavailable(
                f"cannot connect to the database {where}: {_first_line(exc)}"
            ) from exc
        try:
            yield conn
        finally:
            await conn.close()

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
        if self._direct is not None:
            with contextlib.suppress(sqlite3.Error):
                await self._direct.close()
            if self._direct_path is not None:  # usable again: a new thread on demand
                self._direct = DirectSqlite(self._direct_path)
        await self.engine.dispose()


def _first_line(exc: BaseException) -> str:
    """The useful line of a driver error: SQLAlchemy's own wrapping and links dropped."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
        return "no answer (timed out)"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused (is the database server running and listening there?)"
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text_ = lines[0] if lines else type(cause).__name__
    return text_.removeprefix("(background on this error at: ").strip()


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)
