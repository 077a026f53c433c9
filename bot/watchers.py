"""The fill-notice supervisor: one KIS fill-notice connection per app key in use.

An account gets watched when its active environment has a validated key set: at boot
(from storage), after a key check, after a mode switch. It stops being watched when
its keys go (`/delete`, an account deleted) or stop being validated. KIS allows one
WebSocket session per app key (KIS.md 9), so every account watched through one key —
several accounts of a user, or of several users, on one app key — shares that key's
one connection, registered with each distinct HTS ID among them; each notice goes to
its account by the account number and HTS ID it carries (`bot.notice_routes`).
`state_for(account_id, env)` is what the order guard reads: only READY lets an order
through.

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
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from bot.formatting import kis_time_today
from bot.notice_routes import Watched, notice_accounts
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
    ActiveKeySet,
    FillResult,
    KeySetRecord,
    OrderStatus,
    OutboxMessage,
    Reason,
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


def connection_key(creds: AppCredentials) -> str:
    """One connection per app key and environment: named as that key's lease."""
    return kis_lease(hash_token(creds.app_key), creds.env.value)


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

    async def settle_user(
        self, user_id: int, env: Environment, account_id: int | None = None
    ) -> int:
        """Every order of the account's day not filled in full, checked now (fills made
        while no fill-notice socket was live); returns how many were corrected."""
        ...


class WatcherObserver(Protocol):
    """What the supervisor reports for metrics (kept free of any metrics library)."""

    def notice(self, kind: str) -> None: ...

    def state(self, connection: Hashable, status: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """One watched account: whom its notices are for, and through which keys."""

    account_id: int
    user_id: int
    chat_id: int
    creds: AppCredentials
    hts_id: str
    cano: str
    product_code: str
    label: str = ""  # the account's name in notices, when its user has several

    @property
    def connection(self) -> str:
        return connection_key(self.creds)

    @property
    def env(self) -> Environment:
        return self.creds.env

    def watched(self) -> Watched:
        return Watched(self.account_id, self.hts_id, self.cano, self.product_code)


def target_of(active: ActiveKeySet, label: str = "") -> Target:
    keys = active.keys
    return Target(active.account.id, active.user.id, active.user.chat_id, credentials(keys),
                  keys.hts_id, keys.cano, keys.product_code, label)


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
        # Several instances (SPEC section 12): a key's connection runs on the owner of
        # its lease; the others see its accounts' states as the owner publishes them.
        self._coordinator = coordinator or SoleInstance()
        self._shared = shared
        self._published: dict[int, ConnectionState] = {}  # account id → state
        self._markets = markets or default_markets()
        self._observer = observer
        self._settler = settler
        self._kis = kis
        self._endpoints = endpoints
        self._wake = wake
        self._options = hub_options or HubOptions()
        self._hub: FillNoticeHub[str] = FillNoticeHub(self._options)
        self._targets: dict[int, Target] = {}  # account id → how it is watched
        # connection → what it was started with (creds, HTS IDs): a change restarts it
        self._specs: dict[str, tuple[AppCredentials, tuple[str, ...]]] = {}
        self._down_reported: set[int] = set()  # account ids
        self._was_ready: set[int] = set()
        self._changing = asyncio.Lock()  # targets and connections change one at a time
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # An account added, renamed or deleted changes how notices name accounts.
        storage.accounts.on_change(self._accounts_changed)

    def _accounts_changed(self, user_id: int) -> None:
        if self._closed or not any(t.user_id == user_id for t in self._targets.values()):
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nothing watched here
            self._spawn(self._resync(user_id))

    def __repr__(self) -> str:
        return (f"WatcherSupervisor(connections={len(self._hub)}, "
                f"accounts={len(self._targets)})")

    def set_wake(self, wake: Wake) -> None:
        self._wake = wake

    # --- what the order guard reads --------------------------------------------------

    def connection_state(self, account_id: int) -> ConnectionState | None:
        """The account's fill-notice connection state (here, or as its owner published
        it when it runs on another instance); None when none runs for it."""
        target = self._targets.get(account_id)
        here = None if target is None else self._hub.state(target.connection)
        return here or self._published.get(account_id)

    def is_ready(self, account_id: int) -> bool:
        target = self._targets.get(account_id)
        state = None if target is None else self._hub.state(target.connection)
        return state is not None and state.ready

    def state_for(self, account_id: int, env: Environment) -> tuple[bool, str]:
        """(ready, reason) for the order guard (`webhook_server.guards.FillNoticeReadiness`):
        only a READY subscription in that very environment lets an order through."""
        target = self._targets.get(account_id)
        state = None if target is None else self._hub.state(target.connection)
        if state is None or target is None:
            return False, f"{NOT_READY}: no fill-notice connection (see /status)"
        if target.env is not env:
            return False, f"{NOT_READY}: the fill-notice connection is for {target.env}"
        if state.ready:
            return True, ""
        reason = state.reason or state.status.value
        return False, reason if reason.startswith(NOT_READY) else f"{NOT_READY}: {reason}"

    async def wait_ready(self, account_id: int, env: Environment, within: float) -> None:
        """While the account's connection in `env` is (re)connecting, wait for it (at
        most `within` seconds). One that FAILED (a refused HTS ID), or none, is not
        waited for."""
        target = self._targets.get(account_id)
        connection = None if target is None else self._hub.get(target.connection)
        if target is None or connection is None or target.env is not env:
            return
        if connection.state.status is Status.CONNECTING:
            await connection.wait_ready(within)

    def __len__(self) -> int:
        return len(self._hub)

    async def wait_settled(self, within: float) -> None:
        """Until every connection is READY, FAILED or stopped, at most `within` seconds
        (benchmarks wait on it; alerts wait per account, `wait_ready`)."""
        connections = [c for c in map(self._hub.get, self._hub.keys()) if c is not None]
        if connections:
            await asyncio.gather(*(c.wait_ready(within) for c in connections))

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> int:
        """Watch every account whose active environment has validated keys; returns how
        many.

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
        wanted = await self._wanted(await self._storage.key_sets.validated_for_active())
        async with self._changing:
            await self._apply(wanted, replace_accounts=None)
        log.info("fill-notice watchers started for %d accounts on %d connections",
                 len(wanted), len(self._hub))
        return len(wanted)

    async def _wanted(self, active: Sequence[ActiveKeySet]) -> list[Target]:
        """The targets of these accounts, each named when its user has several."""
        counts: dict[int, int] = {}
        for user_id in {a.user.id for a in active}:
            counts[user_id] = len(await self._storage.accounts.for_user(user_id))
        return [
            target_of(a, a.account.name if counts.get(a.user.id, 1) > 1 else "")
            for a in active
        ]

    # --- several instances -----------------------------------------------------------

    async def gained(self, name: str, epoch: int) -> None:
        """This instance owns the KIS key `name` now: connect its accounts."""
        active = [a for a in await self._storage.key_sets.validated_for_active()
                  if lease_of(a.keys) == name]
        wanted = await self._wanted(active)
        async with self._changing:
            await self._apply(wanted, replace_accounts=None)
        log.info("fill-notice connection of a key taken over: %d account(s)", len(wanted))

    async def losing(self, name: str) -> None:
        """Another instance will own the key: close its connection first (KIS takes one
        session per app key)."""
        async with self._changing:
            for account_id in [a for a, t in self._targets.items() if t.connection == name]:
                self._forget(account_id)
            await self._refresh({name})

    def _heard_user(self, payload: str) -> None:
        if payload.isdigit():
            self._spawn(self._resync(int(payload)))

    async def _resync(self, user_id: int) -> None:
        await self._sync_here(user_id)

    def _heard_state(self, payload: str) -> None:
        if payload.isdigit():
            self._spawn(self._load_published(int(payload)))

    async def _load_published(self, account_id: int | None = None) -> None:
        rows = (
            await self._storage.fill_sessions.all() if account_id is None
            else [r for r in [await self._storage.fill_sessions.get(account_id)] if r]
        )
        if account_id is None:
            self._published.clear()
        else:
            self._published.pop(account_id, None)
        for row in rows:
            with contextlib.suppress(ValueError):
                self._published[row.account_id] = ConnectionState(
                    Status(row.status), row.reason, row.since
                )

    async def close(self) -> None:
        self._closed = True
        await self._hub.close()
        self._targets.clear()
        self._specs.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _subscriptions(self, env: Environment, hts_ids: Sequence[str]) -> list[Subscription]:
        """Every market's fill-notice TR for each HTS ID, on the one session of the key
        (KIS.md 9, 13)."""
        return [
            Subscription(tr_id, hts_id, decode)
            for hts_id in hts_ids
            for tr_id, decode in self._markets.fill_notices(env)
        ]

    async def sync(self, user_id: int) -> ConnectionState | None:
        """Make the user's accounts' connections match storage (keys changed, mode
        switched, account added or deleted, …); returns the default account's state.
        Several instances: every instance hears of it, and each key's owner connects."""
        state = await self._sync_here(user_id)
        if self._shared:
            await self._storage.signals.notify(USERS_CHANNEL, str(user_id))
            await self._coordinator.rebalance()
        return state

    async def _sync_here(self, user_id: int) -> ConnectionState | None:
        accounts = await self._storage.accounts.for_user(user_id)
        active = [a for a in await self._storage.key_sets.validated_for_active()
                  if a.user.id == user_id] if accounts else []
        wanted = [
            t for t in await self._wanted(active)
            if not self._shared or self._coordinator.held(t.connection) is not None
        ]
        async with self._changing:
            if self._closed:
                wanted = []
            await self._apply(wanted, replace_accounts={a.id for a in accounts} | {
                a for a, t in self._targets.items() if t.user_id == user_id
            })
        default = next((a for a in accounts if a.is_default), None)
        return None if default is None else self.connection_state(default.id)

    async def stop_user(self, user_id: int) -> None:
        async with self._changing:
            gone = [a for a, t in self._targets.items() if t.user_id == user_id]
            connections = {self._targets[a].connection for a in gone}
            for account_id in gone:
                self._forget(account_id)
            await self._refresh(connections)
        if self._shared:
            await self._storage.signals.notify(USERS_CHANNEL, str(user_id))

    # --- targets and connections (under `_changing`) ----------------------------------

    async def _apply(self, wanted: Sequence[Target], *, replace_accounts: set[int] | None) -> None:
        """Watch `wanted`; with `replace_accounts`, those accounts not in `wanted` stop
        being watched. Connections whose accounts changed are started, restarted or
        stopped to match."""
        touched: set[str] = set()
        keep = {t.account_id for t in wanted}
        for account_id in replace_accounts or ():
            if account_id not in keep and account_id in self._targets:
                touched.add(self._targets[account_id].connection)
                self._forget(account_id)
        for target in wanted:
            old = self._targets.get(target.account_id)
            if old is not None and old != target:
                touched.add(old.connection)
            self._targets[target.account_id] = target
            touched.add(target.connection)
        await self._refresh(touched)

    def _forget(self, account_id: int) -> None:
        self._targets.pop(account_id, None)
        self._was_ready.discard(account_id)
        self._down_reported.discard(account_id)

    def _on(self, connection: str) -> list[Target]:
        return [t for t in self._targets.values() if t.connection == connection]

    async def _refresh(self, connections: set[str]) -> None:
        for connection in sorted(connections):
            targets = self._on(connection)
            if not targets:
                self._specs.pop(connection, None)
                await self._hub.stop(connection)
                continue
            creds = targets[0].creds
            hts_ids = tuple(sorted({t.hts_id for t in targets}))
            spec = (creds, hts_ids)
            if self._specs.get(connection) != spec:
                # New secret or HTS IDs: a fresh connection (the hub alone would keep an
                # old one whose URL and TRs still match).
                await self._hub.stop(connection)
                self._specs[connection] = spec
            await self._start(connection, creds, hts_ids)

    async def _start(
        self, connection: str, creds: AppCredentials, hts_ids: Sequence[str]
    ) -> FillNoticeConnection:
        env = creds.env

        async def approval_key() -> Secret:
            return await self._kis.approval_key(creds)

        async def invalidate() -> None:
            await self._kis.invalidate_approval_key(creds)

        async def on_notice(notice: FillNotice) -> None:
            await self._route(connection, notice)

        def on_state(state: ConnectionState) -> None:
            self._on_state(connection, env, state)

        return await self._hub.ensure(
            connection,
            url=self._endpoints.ws_url(env),
            subscriptions=self._subscriptions(env, hts_ids),
            approval_key=approval_key,
            invalidate_approval=invalidate,
            on_notice=on_notice,
            on_state=on_state,
            name=f"key {connection.split(':')[1][:8]} {env.value}",
        )

    # --- the key check's fill-notice probe -------------------------------------------

    async def probe(
        self, account_id: int, chat_id: int, creds: AppCredentials, hts_id: str,
        timeout: float,  # noqa: ASYNC109
    ) -> ConnectionState:
        """Subscribe with these keys and wait (bounded) for READY or FAILED.

        KIS allows one WebSocket session per app key, so when the account watches this
        environment, or the key's session runs here for other accounts, the probe *is*
        the live connection (restarted with these keys); otherwise a short-lived
        connection is opened and closed. `sync` afterwards keeps or stops the account's
        watching according to the check results.
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
        account = await self._storage.accounts.get(account_id)
        connection = connection_key(creds)
        if account is not None and (
            account.active_environment is creds.env or self._hub.get(connection) is not None
        ):
            async with self._changing:
                old = self._targets.get(account_id)
                probe = Target(
                    account_id, account.user_id, chat_id, creds, hts_id,
                    old.cano if old is not None else "",
                    old.product_code if old is not None else "",
                    old.label if old is not None else "",
                )
                touched = {connection} | ({old.connection} if old is not None else set())
                self._targets[account_id] = probe
                self._specs.pop(connection, None)  # restarted with these keys
                await self._refresh(touched)
                live = self._hub.get(connection)
            if live is not None:
                return await live.wait_ready(timeout)
        return await self._probe_alone(account_id, chat_id, creds, hts_id, timeout)

    async def _probe_alone(
        self, account_id: int, chat_id: int, creds: AppCredentials, hts_id: str,
        timeout: float,  # noqa: ASYNC109
    ) -> ConnectionState:
        async def approval_key() -> Secret:
            return await self._kis.approval_key(creds)

        async def on_notice(notice: FillNotice) -> None:
            log.debug("a notice on a probe of account %d (not stored)", account_id)

        options = self._options
        connection = FillNoticeConnection(
            url=self._endpoints.ws_url(creds.env),
            subscriptions=self._subscriptions(creds.env, [hts_id]),
            approval_key=approval_key,
            on_notice=on_notice,
            backoff=options.backoff,
            refused_backoff=options.refused_backoff,
            sleep=options.sleep,
            connect=options.connect,
            name=f"account {account_id} {creds.env.value} probe",
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
        )
        connection.start()
        try:
            return await connection.wait_ready(timeout)
        finally:
            await connection.stop()

    # --- routing ---------------------------------------------------------------------

    async def _route(self, connection: str, notice: FillNotice) -> None:
        """A notice from a key's session, to the account it is for."""
        targets = self._on(connection)
        by_id = {t.account_id: t for t in targets}
        candidates = [by_id[w.account_id] for w in notice_accounts(
            [t.watched() for t in targets], notice.hts_id, notice.account
        )]
        if not candidates:
            log.info("a fill notice for an account not watched on this key; ignored")
            return
        target = candidates[0]
        if len(candidates) > 1:  # one KIS account under several names: whose order?
            for candidate in candidates:
                if await self._storage.orders.by_order_no(
                    candidate.user_id, notice.order_no, candidate.env,
                    account_id=candidate.account_id,
                ) is not None:
                    target = candidate
                    break
        await self.handle_notice(target, notice)

    # --- notices ---------------------------------------------------------------------

    async def handle_notice(self, target: Target, notice: FillNotice) -> None:
        """Store one fill notice of `target`'s account and queue the chat message (then
        wake the notifier)."""
        user_id, account_id, chat_id, env = (
            target.user_id, target.account_id, target.chat_id, target.env
        )
        kind = notice.kind
        if self._observer is not None:
            self._observer.notice(kind.value)
        at = kis_time_today(notice.time, datetime.now(UTC))
        queued: OutboxMessage | None = None
        market = notice.market
        currency = self._markets.get(market).currency.code
        exchange = notice.exchange
        label = target.label
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
                    exchange=exchange, currency=currency, account=label,
                )
                return _entry(chat_id, message, f"fill:{user_id}:{key}")

            result, queued = await self._storage.fills.record_and_queue(
                user_id, env, notice.order_no, quantity=notice.quantity, price=notice.price,
                filled_at=at, notice_key=key, notice=fill_message, market=market,
                currency=currency, account_id=account_id,
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
            order = await self._storage.orders.by_order_no(
                user_id, notice.order_no, env, account_id=account_id
            )
            message = Notice(
                kind=NoticeKind.ORDER_REJECTED, env=env.value, at=at, symbol=notice.symbol,
                name=notice.name or (order.name or "" if order else ""), side=notice.side,
                quantity=notice.order_qty or notice.quantity, order_no=notice.order_no,
                reason="rejected by KIS (fill notice)", reason_key="kis_rejected_notice",
                market=market, exchange=exchange, currency=currency, account=label,
            )
            dedupe = notice_dedupe_key(
                NoticeKind.ORDER_REJECTED, user_id, env.value, notice.order_no, account_id
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
                order = await self._storage.orders.by_order_no(
                    user_id, notice.order_no, env, account_id=account_id
                )
                name = order.name or "" if order else ""
            message = Notice(
                kind=NoticeKind.ORDER_ACCEPTED, env=env.value, at=at, symbol=notice.symbol,
                name=name, side=notice.side,
                quantity=notice.order_qty or notice.quantity,
                order_type="limit" if notice.order_kind == "00" else "market",
                price=notice.order_price or None, order_no=notice.order_no, market=market,
                exchange=exchange, currency=currency, account=label,
            )
            # Same key as the pipeline's "accepted": whichever comes first is sent, once.
            queued = await self._enqueue(
                user_id, chat_id, message,
                notice_dedupe_key(NoticeKind.ORDER_ACCEPTED, user_id, env.value,
                                  notice.order_no, account_id),
            )
        else:
            log.info("fill notice of kind %s for account %d (no chat message)", kind,
                     account_id)
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

    def _on_state(self, connection: str, env: Environment, state: ConnectionState) -> None:
        """A key's connection changed state: so did every account watched through it."""
        if self._observer is not None:
            self._observer.state(connection, state.status.value)
        for target in self._on(connection):
            self._account_state(target, env, state)

    def _account_state(self, target: Target, env: Environment, state: ConnectionState) -> None:
        account_id = target.account_id
        if self._shared:
            self._spawn(self._publish(target, state))
        if state.status is Status.READY and self._settler is not None:
            # Fills made while no socket was live (a reconnect, a failover, start-up)
            # come from KIS's daily executions now, each told once.
            self._spawn(self._recover_fills(target))
        if state.status is Status.READY:
            self._was_ready.add(account_id)
            if account_id in self._down_reported:
                self._down_reported.discard(account_id)
                self._spawn(self._notify_state(target, env, state, up=True))
        elif (
            state.status is Status.FAILED
            and account_id in self._was_ready
            and account_id not in self._down_reported
        ):
            self._down_reported.add(account_id)
            self._spawn(self._notify_state(target, env, state, up=False))

    async def _publish(self, target: Target, state: ConnectionState) -> None:
        try:
            await self._storage.fill_sessions.publish(
                target.account_id, target.user_id, target.env, target.hts_id,
                state.status.value, state.reason, state.since,
                self._coordinator.instance_name,
            )
        except Exception as exc:
            log.warning("could not publish a fill-notice state (%s)", type(exc).__name__)

    async def _recover_fills(self, target: Target) -> None:
        assert self._settler is not None
        try:
            corrected = await self._settler.settle_user(target.user_id, target.env,
                                                        target.account_id)
        except Exception as exc:  # retried at the next (re)subscription
            log_failure(log, exc, "recovering the fills of account %d failed",
                        target.account_id)
            return
        if corrected:
            log.info("fills recovered after (re)subscribing: %d order(s) of account %d",
                     corrected, target.account_id)

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify_state(
        self, target: Target, env: Environment, state: ConnectionState, *, up: bool
    ) -> None:
        notice = Notice(
            kind=NoticeKind.FILL_NOTICE_UP if up else NoticeKind.FILL_NOTICE_DOWN,
            env=env.value, at=state.since, reason=state.reason or "", account=target.label,
        )
        stamp = state.since.isoformat()
        try:
            # One account's first: older messages (before accounts) were per user.
            dedupe = f"{notice.kind.value}:{target.user_id}:{stamp}"
            if target.label:
                dedupe += f":{target.account_id}"
            queued = await self._enqueue(target.user_id, target.chat_id, notice, dedupe)
            if queued is not None and self._wake is not None:
                self._wake(queued)
        except Exception:
            log.exception("could not queue the fill-notice state message for account %d",
                          target.account_id)


def _entry(chat_id: int, notice: Notice, dedupe: str) -> OutboxEntry:
    return OutboxEntry(chat_id, notice.kind.value, notice.to_payload(), dedupe)
