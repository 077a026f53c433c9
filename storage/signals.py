"""Wake-ups between instances: PostgreSQL `LISTEN/NOTIFY`, or in-process on SQLite.

A signal says "look at the database now" (an alert for a key you own, a message to
send, a lease given up, a user's settings changed); the rows stay the truth. So a lost
signal costs latency only: every consumer also looks on a timer, and after the
listening connection was lost and came back, `on_reconnect` handlers re-read
everything (notifications sent meanwhile are gone).

Inside a transaction, `notify_in(session, channel, payload)` sends a signal that is
delivered only if the transaction commits (PostgreSQL's own guarantee); on SQLite it
is delivered after the commit by the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import asyncpg  # type: ignore[import-untyped]  # no type information shipped
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

Handler = Callable[[str], None]
Reconnected = Callable[[], None]

CHANNEL_PREFIX: Final = "moahook"
USERS_CHANNEL: Final = "users"  # a user's settings or keys changed (payload: the user id)
MAX_PAYLOAD: Final = 7_000  # PostgreSQL refuses payloads of 8,000 bytes and more


def channel_name(channel: str, schema: str | None) -> str:
    """Channels are database-wide: a schema (tests, shared servers) gets its own."""
    return f"{CHANNEL_PREFIX}_{schema}_{channel}" if schema else f"{CHANNEL_PREFIX}_{channel}"


class Signals(Protocol):
    def listen(self, channel: str, handler: Handler) -> None:
        """Call `handler(payload)` for every signal on `channel` (from any instance,
        this one included). Handlers must be quick and must not raise."""
        ...

    def on_reconnect(self, handler: Reconnected) -> None: ...

    async def notify_in(self, session: AsyncSession, channel: str, payload: str = "") -> None:
        """Signal `channel` when `session`'s transaction commits."""
        ...

    async def notify_many_in(
        self, session: AsyncSession, channel: str, payloads: Sequence[str]
    ) -> None:
        """One signal per payload on `channel` when the transaction commits (one
        statement for all of them)."""
        ...

    async def notify(self, channel: str, payload: str = "") -> None:
        """Signal now, outside any transaction."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class _Handlers:
    def __init__(self) -> None:
        self._by_channel: dict[str, list[Handler]] = defaultdict(list)
        self._reconnected: list[Reconnected] = []

    def add(self, channel: str, handler: Handler) -> None:
        self._by_channel[channel].append(handler)

    def add_reconnected(self, handler: Reconnected) -> None:
        self._reconnected.append(handler)

    def channels(self) -> list[str]:
        return list(self._by_channel)

    def dispatch(self, channel: str, payload: str) -> None:
        for handler in list(self._by_channel.get(channel, ())):
            try:
                handler(payload)
            except Exception:  # one consumer must not starve the others
                log.exception("signal handler for %s failed", channel)

    def reconnected(self) -> None:
        for handler in list(self._reconnected):
            try:
                handler()
            except Exception:
                log.exception("reconnect handler failed")


class LocalSignals:
    """One process (SQLite): signals go straight to this process's handlers, after the
    commit of the transaction that sent them."""

    def __init__(self) -> None:
        self._handlers = _Handlers()
        self._pending: dict[int, list[tuple[str, str]]] = {}

    def __repr__(self) -> str:
        return "LocalSignals()"

    def listen(self, channel: str, handler: Handler) -> None:
        self._handlers.add(channel, handler)

    def on_reconnect(self, handler: Reconnected) -> None:
        self._handlers.add_reconnected(handler)  # never called: nothing to lose

    async def notify_in(self, session: AsyncSession, channel: str, payload: str = "") -> None:
        loop = asyncio.get_running_loop()
        sync_session = session.sync_session

        def after_commit(_session: object) -> None:
            loop.call_soon(self._handlers.dispatch, channel, payload)

        from sqlalchemy import event  # local: only this path needs the event API

        event.listen(sync_session, "after_commit", after_commit, once=True)

    async def notify_many_in(
        self, session: AsyncSession, channel: str, payloads: Sequence[str]
    ) -> None:
        for payload in payloads:
            await self.notify_in(session, channel, payload)

    async def notify(self, channel: str, payload: str = "") -> None:
        asyncio.get_running_loop().call_soon(self._handlers.dispatch, channel, payload)

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to close."""


class PgSignals:
    """`LISTEN` on a dedicated connection (kept open, reconnected with backoff), and
    `NOTIFY` through the caller's transaction or a short one of its own."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        retry_delay: float = 0.5,
        max_retry_delay: float = 10.0,
        keepalive: float = 5.0,
    ) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._dsn = parsed.render_as_string(hide_password=False)
        self._display = parsed.render_as_string(hide_password=True)
        self._schema = schema
        self._retry_delay = retry_delay
        self._max_retry_delay = max_retry_delay
        self._keepalive = keepalive
        self._handlers = _Handlers()
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        # asyncpg runs one operation at a time per connection: a NOTIFY racing another
        # (or the keep-alive query) failed with InterfaceError, and the keep-alive's
        # failure then dropped the listening connection with its notifications.
        self._using = asyncio.Lock()

    def __repr__(self) -> str:
        return f"PgSignals({self._display!r}, connected={self._connected.is_set()})"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def server_pid(self) -> int | None:
        """The listening session's backend process id (diagnostics, tests)."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else int(conn.get_server_pid())

    def listen(self, channel: str, handler: Handler) -> None:
        self._handlers.add(channel, handler)
        conn = self._conn
        if conn is not None and not conn.is_closed():
            # Listening already: add this channel on the live connection too.
            task = asyncio.get_running_loop().create_task(self._listen_one(conn, channel))
            task.add_done_callback(_log_failure)

    def on_reconnect(self, handler: Reconnected) -> None:
        self._handlers.add_reconnected(handler)

    async def notify_in(self, session: AsyncSession, channel: str, payload: str = "") -> None:
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": channel_name(channel, self._schema), "payload": _bounded(payload)},
        )

    async def notify_many_in(
        self, session: AsyncSession, channel: str, payloads: Sequence[str]
    ) -> None:
        if not payloads:
            return
        await session.execute(
            text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p"),
            {"channel": channel_name(channel, self._schema),
             "payloads": [_bounded(p) for p in payloads]},
        )

    async def notify(self, channel: str, payload: str = "") -> None:
        conn = self._conn
        if conn is None or conn.is_closed():
            raise ConnectionError("not connected to PostgreSQL")
        async with self._using:
            await conn.execute(
                "SELECT pg_notify($1, $2)", channel_name(channel, self._schema), _bounded(payload)
            )

    async def start(self) -> None:
        """Connect and listen (waits for the first connection, bounded by asyncpg's
        connect timeout); afterwards reconnects by itself."""
        self._closing = False
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="pg-signals")

    async def wait_connected(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounded wait
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self._connected.is_set()

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        conn, self._conn = self._conn, None
        self._connected.clear()
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5.0)

    async def _connect(self) -> None:
        settings = {"search_path": self._schema} if self._schema else {}
        conn = await asyncpg.connect(self._dsn, server_settings=settings)
        try:
            for channel in self._handlers.channels():
                await self._listen_one(conn, channel)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        self._connected.set()

    async def _listen_one(self, conn: asyncpg.Connection, channel: str) -> None:
        def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            self._handlers.dispatch(channel, payload)

        async with self._using:
            await conn.add_listener(channel_name(channel, self._schema), received)

    async def _watch(self) -> None:
        """Reconnect whenever the listening connection is lost (or stops answering: a
        network split sends no close), then tell the handlers to re-read what they may
        have missed."""
        delay = self._retry_delay
        while not self._closing:
            conn = self._conn
            if conn is not None and not conn.is_closed():
                await self._until_lost(conn)
                if self._stopping():
                    return
                log.warning("signals: lost the listening connection to PostgreSQL")
            self._connected.clear()
            self._conn = None
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("signals: reconnecting to PostgreSQL failed (%s); retry in %.1f s",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(self._max_retry_delay, delay * 2)
                continue
            delay = self._retry_delay
            log.info("signals: listening again")
            self._handlers.reconnected()

    def _stopping(self) -> bool:
        # A method, so that type narrowing of the flag does not outlive an await.
        return self._closing

    async def _until_lost(self, conn: asyncpg.Connection) -> None:
        closed = asyncio.Event()
        conn.add_termination_listener(lambda _conn: closed.set())
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closed.wait(), self._keepalive)
            if closed.is_set() or self._closing:
                return
            try:
                async with asyncio.timeout(self._keepalive), self._using:
                    await conn.fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()
                return


def _bounded(payload: str) -> str:
    if len(payload.encode("utf-8")) > MAX_PAYLOAD:
        raise ValueError("signal payload too long")
    return payload


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("signals: could not listen on a new channel: %s", task.exception())
