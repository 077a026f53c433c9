"""The fill-notice supervisor: one KIS fill-notice connection per user.

A user gets a connection when their active environment has a validated key set:
at boot (from storage), after a key check, after a mode switch. It is stopped when
the keys go (`/delete`) or stop being validated. `state_for(user_id, env)` is what the
order guard reads: only READY lets an order through.

Each notice is stored (fills, order status) and queued in the outbox as a chat
notice before the notifier is woken, so a notice survives a crash at any point. A fill
and its chat notice are one transaction; the queued row is handed to the notifier as
it is (`wake(message)`), so it leaves without the outbox being read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.formatting import kis_time_today
from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.fillnotice import FillNotice
from kis.fillnotice import NoticeKind as KisNoticeKind
from kis.markets import Markets, default_markets
from kis.models import AppCredentials
from kis.secret import Secret
from kis.ws import (
    NOT_READY,
    ConnectionState,
    FillNoticeConnection,
    FillNoticeHub,
    HubOptions,
    Status,
    Subscription,
)
from storage.coordination import Coordinator, SoleInstance, kis_lease, lease_of
from storage.crypto import hash_token
from storage.errors import log_failure
from storage.facade import Storage
from storage.notices import Notice, NoticeKind, notice_dedupe_key
from storage.records import (
    FillResult,
    KeySetRecord,
    OrderStatus,
    OutboxMessage,
    Reason,
    UserRecord,
)
from storage.repositories.fill_sessions import STATES_CHANNEL
from storage.repositories.outbox import OutboxEntry
from storage.signals import USERS_CHANNEL

log = logging.getLogger(__name__)



class Wake(Protocol):
    """`Notifier.wake`: a message was just queued (given, it can be sent as it is)."""

    def __call__(self, message: OutboxMessage | None = None, /) -> None: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def credentials(keys: KeySetRecord) -> AppCredentials:
    return AppCredentials(
        app_key=keys.app_key.reveal(), app_secret=keys.app_secret, env=keys.environment
    )


def fill_notice_key(notice: FillNotice) -> str:
    """What identifies one fill: its fields and its position among identical records of
    one subscription. Equal lots in one second differ by position; the same record
    delivered again (another subscription, another instance) has the same key."""
    raw = "|".join(
        (notice.order_no, notice.time, str(notice.quantity), str(notice.price),
         notice.accept_status, notice.account)
    )
    digest = hashlib.sha256(raw.encode()).hexdigest()[:40]
    # The first occurrence keeps the key earlier versions stored.
    return digest if notice.occurrence == 1 else f"{digest}:{notice.occurrence}"


class SettleLater(Protocol):
    """Checks an order's fills against KIS's daily executions once its notices are
    quiet (`webhook_server.settlement.FillSettler`), passed in by the composition root."""

    def settle_later(self, order_id: int) -> None: ...

    async def settle_user(self, user_id: int, env: Environment) -> int:
        """Every order of the user's day not filled in full, checked now (fills made
        while no fill-notice socket was live); returns how many were corrected."""
        ...


class WatcherObserver(Protocol):
    """What the supervisor reports for metrics (kept free of any metrics library)."""

    def notice(self, kind: str) -> None: ...

    def state(self, user_id: int, status: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Target:
    creds: AppCredentials
    hts_id: str
    chat_id: int


class WatcherSupervisor:
    def __init__(
        self,
        *,
        storage: Storage,
        kis: KisClient,
        endpoints: Endpoints,
        wake: Wake | None = None,
        hub_options: HubOptions | None = None,
        now: Callable[[], datetime] = _utcnow,
        observer: WatcherObserver | None = None,
        markets: Markets | None = None,
        settler: SettleLater | None = None,
        coordinator: Coordinator | None = None,
        shared: bool = False,
    ) -> None:
        self._storage = storage
        # Several instances (SPEC section 12): a user's connection runs on the owner of
        # their KIS key's lease; the others see its state as the owner publishes it.
        self._coordinator = coordinator or SoleInstance()
        self._shared = shared
        self._published: dict[int, ConnectionState] = {}
        self._leases: dict[int, str] = {}  # users connected here → their key's lease
        self._markets = markets or default_markets()
        self._observer = observer
        self._settler = settler
        self._kis = kis
        self._endpoints = endpoints
        self._wake = wake
        self._options = hub_options or HubOptions()
        self._hub: FillNoticeHub[int] = FillNoticeHub(self._options)
        self._targets: dict[int, _Target] = {}
        self._down_reported: set[int] = set()
        self._was_ready: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"WatcherSupervisor(connections={len(self._hub)})"

    def set_wake(self, wake: Wake) -> None:
        self._wake = wake

    # --- what the order guard reads --------------------------------------------------

    def connection_state(self, user_id: int) -> ConnectionState | None:
        """The user's fill-notice connection state (here, or as its owner published it
        when it runs on another instance); None when none runs for them."""
        return self._hub.state(user_id) or self._published.get(user_id)

    def is_ready(self, user_id: int) -> bool:
        state = self._hub.state(user_id)
        return state is not None and state.ready

    def state_for(self, user_id: int, env: Environment) -> tuple[bool, str]:
        """(ready, reason) for the order guard (`webhook_server.guards.FillNoticeReadiness`):
        only a READY subscription in that very environment lets an order through."""
        target = self._targets.get(user_id)
        state = self._hub.state(user_id)
        if state is None or target is None:
            return False, f"{NOT_READY}: no fill-notice connection (see /status)"
        if target.creds.env is not env:
            return False, f"{NOT_READY}: the fill-notice connection is for {target.creds.env}"
        if state.ready:
            return True, ""
        reason = state.reason or state.status.value
        return False, reason if reason.startswith(NOT_READY) else f"{NOT_READY}: {reason}"

    async def wait_ready(self, user_id: int, env: Environment, within: float) -> None:
        """While the user's connection in `env` is (re)connecting, wait for it (at most
        `within` seconds). One that FAILED (a refused HTS ID), or none, is not waited for."""
        target = self._targets.get(user_id)
        connection = self._hub.get(user_id)
        if target is None or connection is None or target.creds.env is not env:
            return
        if connection.state.status is Status.CONNECTING:
            await connection.wait_ready(within)

    def __len__(self) -> int:
        return len(self._hub)

    async def wait_settled(self, within: float) -> None:
        """Until every connection is READY, FAILED or stopped, at most `within` seconds
        (benchmarks wait on it; alerts wait per user, `wait_ready`)."""
        connections = [c for c in map(self._hub.get, self._hub.keys()) if c is not None]
        if connections:
            await asyncio.gather(*(c.wait_ready(within) for c in connections))

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> int:
        """Connect every user whose active environment has validated keys; returns how many.

        Several instances: only what the owned keys' leases cover, as they are gained;
        the states of the others are read as their owners publish them."""
        self._closed = False
        if self._shared:
            signals = self._storage.signals
            signals.listen(USERS_CHANNEL, self._heard_user)
            signals.listen(STATES_CHANNEL, self._heard_state)
            signals.on_reconnect(lambda: self._spawn(self._load_published()))
            await self._load_published()
            return 0
        started = 0
        for active in await self._storage.key_sets.validated_for_active():
            await self._ensure(active.user, active.keys)
            started += 1
        log.info("fill-notice watchers started for %d users", started)
        return started

    # --- several instances -----------------------------------------------------------

    async def gained(self, name: str, epoch: int) -> None:
        """This instance owns the KIS key `name` now: connect its users."""
        users = [a for a in await self._storage.key_sets.validated_for_active()
                 if lease_of(a.keys) == name]
        for active in users:
            async with self._lock(active.user.id):
                await self._ensure(active.user, active.keys)
        log.info("fill-notice connections of a key taken over: %d", len(users))

    async def losing(self, name: str) -> None:
        """Another instance will own the key: close its connections first (KIS takes one
        session per app key)."""
        for user_id in [u for u, lease in self._leases.items() if lease == name]:
            async with self._lock(user_id):
                await self._stop(user_id)

    def _heard_user(self, payload: str) -> None:
        if payload.isdigit():
            self._spawn(self._resync(int(payload)))

    async def _resync(self, user_id: int) -> None:
        await self._sync_here(user_id)

    def _heard_state(self, payload: str) -> None:
        if payload.isdigit():
            self._spawn(self._load_published(int(payload)))

    async def _load_published(self, user_id: int | None = None) -> None:
        rows = (
            await self._storage.fill_sessions.all() if user_id is None
            else [r for r in [await self._storage.fill_sessions.get(user_id)] if r]
        )
        if user_id is None:
            self._published.clear()
        else:
            self._published.pop(user_id, None)
        for row in rows:
            with contextlib.suppress(ValueError):
                self._published[row.user_id] = ConnectionState(
                    Status(row.status), row.reason, row.since
                )

    async def close(self) -> None:
        self._closed = True
        await self._hub.close()
        self._targets.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _subscriptions(self, env: Environment, hts_id: str) -> list[Subscription]:
        """Every market's fill-notice TR on the one session of the key (KIS.md 9, 13)."""
        return [
            Subscription(tr_id, hts_id, decode)
            for tr_id, decode in self._markets.fill_notices(env)
        ]

    def _lock(self, user_id: int) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    async def sync(self, user_id: int) -> ConnectionState | None:
        """Make the user's connection match storage (keys changed, mode switched, …).
        Several instances: every instance hears of it, and the key's owner connects."""
        state = await self._sync_here(user_id)
        if self._shared:
            await self._storage.signals.notify(USERS_CHANNEL, str(user_id))
            await self._coordinator.rebalance()
        return state

    async def _sync_here(self, user_id: int) -> ConnectionState | None:
        async with self._lock(user_id):
            user = await self._storage.users.get(user_id)
            keys = None
            if user is not None:
                keys = await self._storage.key_sets.get(user_id, user.active_environment)
            if user is None or keys is None or not keys.validated or self._closed:
                await self._stop(user_id)
                return None
            lease = lease_of(keys)
            if self._shared and (lease is None or self._coordinator.held(lease) is None):
                await self._stop(user_id)  # its key's owner runs it (see `gained`)
                return self.connection_state(user_id)
            await self._ensure(user, keys)
            return self._hub.state(user_id)

    async def stop_user(self, user_id: int) -> None:
        async with self._lock(user_id):
            await self._stop(user_id)
        if self._shared:
            await self._storage.signals.notify(USERS_CHANNEL, str(user_id))

    async def _stop(self, user_id: int) -> None:
        self._targets.pop(user_id, None)
        self._leases.pop(user_id, None)
        self._was_ready.discard(user_id)
        self._down_reported.discard(user_id)
        await self._hub.stop(user_id)

    async def _ensure(self, user: UserRecord, keys: KeySetRecord) -> FillNoticeConnection:
        target = _Target(credentials(keys), keys.hts_id, user.chat_id)
        lease = lease_of(keys)
        if lease is not None:
            self._leases[user.id] = lease
        if self._targets.get(user.id) != target:
            # New app key / secret / HTS ID: a fresh connection (the hub alone would
            # keep an old one whose URL, TR and HTS ID still match).
            await self._hub.stop(user.id)
            self._targets[user.id] = target
        return await self._start(user.id, target)

    async def _start(self, user_id: int, target: _Target) -> FillNoticeConnection:
        creds = target.creds
        env = creds.env

        async def approval_key() -> Secret:
            return await self._kis.approval_key(creds)

        async def invalidate() -> None:
            await self._kis.invalidate_approval_key(creds)

        async def on_notice(notice: FillNotice) -> None:
            await self.handle_notice(user_id, target.chat_id, env, notice)

        def on_state(state: ConnectionState) -> None:
            self._on_state(user_id, target.chat_id, env, state)

        return await self._hub.ensure(
            user_id,
            url=self._endpoints.ws_url(env),
            subscriptions=self._subscriptions(env, target.hts_id),
            approval_key=approval_key,
            invalidate_approval=invalidate,
            on_notice=on_notice,
            on_state=on_state,
            name=f"user {user_id} {env.value}",
        )

    # --- the key check's fill-notice probe -------------------------------------------

    async def probe(
        self, user_id: int, chat_id: int, creds: AppCredentials, hts_id: str, timeout: float  # noqa: ASYNC109
    ) -> ConnectionState:
        """Subscribe with these keys and wait (bounded) for READY or FAILED.

        KIS allows one WebSocket session per app key, so for the user's active
        environment the probe *is* the live connection (restarted with the new keys);
        for the other environment a short-lived connection is opened and closed.
        `sync` afterwards keeps or stops the live one according to the check results.
        """
        if self._shared:
            # One session per app key, whichever instance: probe where the key's lease
            # is held, taking it here (asking its holder) when needed.
            lease = kis_lease(hash_token(creds.app_key), creds.env.value)
            if await self._coordinator.take_now(lease, timeout / 2) is None:
                return ConnectionState(
                    Status.CONNECTING,
                    f"{NOT_READY}: this key's session is busy on another instance; "
                    "check again in a moment",
                    _utcnow(),
                )
        user = await self._storage.users.get(user_id)
        if user is not None and user.active_environment is creds.env:
            async with self._lock(user_id):
                await self._hub.stop(user_id)
                target = _Target(creds, hts_id, chat_id)
                self._targets[user_id] = target
                connection = await self._start(user_id, target)
            return await connection.wait_ready(timeout)
        return await self._probe_alone(user_id, chat_id, creds, hts_id, timeout)

    async def _probe_alone(
        self, user_id: int, chat_id: int, creds: AppCredentials, hts_id: str, timeout: float  # noqa: ASYNC109
    ) -> ConnectionState:
        async def approval_key() -> Secret:
            return await self._kis.approval_key(creds)

        async def on_notice(notice: FillNotice) -> None:
            await self.handle_notice(user_id, chat_id, creds.env, notice)

        options = self._options
        connection = FillNoticeConnection(
            url=self._endpoints.ws_url(creds.env),
            subscriptions=self._subscriptions(creds.env, hts_id),
            approval_key=approval_key,
            on_notice=on_notice,
            backoff=options.backoff,
            refused_backoff=options.refused_backoff,
            sleep=options.sleep,
            connect=options.connect,
            name=f"user {user_id} {creds.env.value} probe",
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
        )
        connection.start()
        try:
            return await connection.wait_ready(timeout)
        finally:
            await connection.stop()

    # --- notices ---------------------------------------------------------------------

    async def handle_notice(
        self, user_id: int, chat_id: int, env: Environment, notice: FillNotice
    ) -> None:
        """Store one fill notice and queue the chat message (then wake the notifier)."""
        kind = notice.kind
        if self._observer is not None:
            self._observer.notice(kind.value)
        at = kis_time_today(notice.time, datetime.now(UTC))
        queued: OutboxMessage | None = None
        market = notice.market
        currency = self._markets.get(market).currency.code
        exchange = notice.exchange
        if kind is KisNoticeKind.FILLED:
            key = fill_notice_key(notice)

            def fill_message(result: FillResult) -> OutboxEntry | None:
                if not result.counted:
                    return None  # KIS's daily executions had shown it: reported then
                order = result.order
                if order is not None:
                    filled, ordered, name = order.filled_qty, order.quantity, order.name or ""
                else:
                    filled, ordered, name = notice.quantity, notice.order_qty, ""
                complete = ordered <= 0 or filled >= ordered
                message = Notice(
                    kind=NoticeKind.ORDER_FILLED if complete else NoticeKind.ORDER_PARTIAL,
                    env=env.value, at=at, symbol=notice.symbol, name=notice.name or name,
                    side=notice.side, quantity=notice.quantity, price=notice.price,
                    filled=filled, ordered=ordered, order_no=notice.order_no, market=market,
                    exchange=exchange, currency=currency,
                )
                return _entry(chat_id, message, f"fill:{user_id}:{key}")

            result, queued = await self._storage.fills.record_and_queue(
                user_id, env, notice.order_no, quantity=notice.quantity, price=notice.price,
                filled_at=at, notice_key=key, notice=fill_message, market=market,
                currency=currency,
            )
            order = result.order
            if (
                self._settler is not None
                and order is not None
                and order.filled_qty < order.quantity
            ):
                # Short of its quantity (or this looked like a repeat): once the notices
                # are quiet, the sum is checked against KIS's daily executions.
                self._settler.settle_later(order.id)
        elif kind is KisNoticeKind.REJECTED:
            order = await self._storage.orders.by_order_no(user_id, notice.order_no, env)
            message = Notice(
                kind=NoticeKind.ORDER_REJECTED, env=env.value, at=at, symbol=notice.symbol,
                name=notice.name or (order.name or "" if order else ""), side=notice.side,
                quantity=notice.order_qty or notice.quantity, order_no=notice.order_no,
                reason="rejected by KIS (fill notice)", reason_key="kis_rejected_notice",
                market=market, exchange=exchange, currency=currency,
            )
            dedupe = notice_dedupe_key(
                NoticeKind.ORDER_REJECTED, user_id, env.value, notice.order_no
            )
            if order is None:
                queued = await self._enqueue(user_id, chat_id, message, dedupe)
            else:
                # The order's new status and its chat message: one transaction.
                _, queued = await self._storage.orders.record_outcome(
                    order, OrderStatus.REJECTED,
                    Reason("rejected by KIS (fill notice)", "kis_rejected_notice"),
                    notice=_entry(chat_id, message, dedupe),
                )
        elif kind is KisNoticeKind.ACCEPTED:
            name = notice.name
            if not name:  # only the stock name is wanted from the stored order
                order = await self._storage.orders.by_order_no(user_id, notice.order_no, env)
                name = order.name or "" if order else ""
            message = Notice(
                kind=NoticeKind.ORDER_ACCEPTED, env=env.value, at=at, symbol=notice.symbol,
                name=name, side=notice.side,
                quantity=notice.order_qty or notice.quantity,
                order_type="limit" if notice.order_kind == "00" else "market",
                price=notice.order_price or None, order_no=notice.order_no, market=market,
                exchange=exchange, currency=currency,
            )
            # Same key as the pipeline's "accepted": whichever comes first is sent, once.
            queued = await self._enqueue(
                user_id, chat_id, message,
                notice_dedupe_key(NoticeKind.ORDER_ACCEPTED, user_id, env.value, notice.order_no),
            )
        else:
            log.info("fill notice of kind %s for user %d (no chat message)", kind, user_id)
        if queued is not None and self._wake is not None:
            self._wake(queued)

    async def _enqueue(
        self, user_id: int, chat_id: int, notice: Notice, dedupe: str
    ) -> OutboxMessage | None:
        entry = _entry(chat_id, notice, dedupe)
        # urgent: the chat notice goes ahead of pipeline writes waiting for SQLite.
        return await self._storage.outbox.add(
            user_id, entry.chat_id, entry.kind, entry.payload, entry.dedupe_key, urgent=True
        )

    def _on_state(
        self, user_id: int, chat_id: int, env: Environment, state: ConnectionState
    ) -> None:
        if self._observer is not None:
            self._observer.state(user_id, state.status.value)
        if self._shared:
            target = self._targets.get(user_id)
            if target is not None:
                self._spawn(self._publish(user_id, env, target.hts_id, state))
        if state.status is Status.READY and self._settler is not None:
            # Fills made while no socket was live (a reconnect, a failover, start-up)
            # come from KIS's daily executions now, each told once.
            self._spawn(self._recover_fills(user_id, env))
        if state.status is Status.READY:
            self._was_ready.add(user_id)
            if user_id in self._down_reported:
                self._down_reported.discard(user_id)
                self._spawn(self._notify_state(user_id, chat_id, env, state, up=True))
        elif (
            state.status is Status.FAILED
            and user_id in self._was_ready
            and user_id not in self._down_reported
        ):
            self._down_reported.add(user_id)
            self._spawn(self._notify_state(user_id, chat_id, env, state, up=False))

    async def _publish(
        self, user_id: int, env: Environment, hts_id: str, state: ConnectionState
    ) -> None:
        try:
            await self._storage.fill_sessions.publish(
                user_id, env, hts_id, state.status.value, state.reason, state.since,
                self._coordinator.instance_name,
            )
        except Exception as exc:
            log.warning("could not publish a fill-notice state (%s)", type(exc).__name__)

    async def _recover_fills(self, user_id: int, env: Environment) -> None:
        assert self._settler is not None
        try:
            corrected = await self._settler.settle_user(user_id, env)
        except Exception as exc:  # retried at the next (re)subscription
            log_failure(log, exc, "recovering the fills of user %d failed", user_id)
            return
        if corrected:
            log.info("fills recovered after (re)subscribing: %d order(s) of user %d",
                     corrected, user_id)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify_state(
        self, user_id: int, chat_id: int, env: Environment, state: ConnectionState, *, up: bool
    ) -> None:
        notice = Notice(
            kind=NoticeKind.FILL_NOTICE_UP if up else NoticeKind.FILL_NOTICE_DOWN,
            env=env.value, at=state.since, reason=state.reason or "",
        )
        stamp = state.since.isoformat()
        try:
            dedupe = f"{notice.kind.value}:{user_id}:{stamp}"
            queued = await self._enqueue(user_id, chat_id, notice, dedupe)
            if queued is not None and self._wake is not None:
                self._wake(queued)
        except Exception:
            log.exception("could not queue the fill-notice state message for user %d", user_id)


def _entry(chat_id: int, notice: Notice, dedupe: str) -> OutboxEntry:
    return OutboxEntry(chat_id, notice.kind.value, notice.to_payload(), dedupe)
