"""The order pipeline: accepted alert → guards → sizing → one KIS order, exactly once.

Alerts arrive in memory from the intake (`submit`) and, after a restart, from the
database (`resume`). The unit is one alert row, which is one account's (an alert for
several accounts is one row per account: SPEC section 16): each is guarded, sized,
limited and placed with that account's keys, on its own. Jobs are keyed by (account,
symbol) so one stock of one account is handled in order while everything else — the
other accounts of one alert included — runs in parallel.

Exactly once: the order row (one per alert row, enforced by the database) is written
`pending` before the request leaves, so an alert that already has an order row is
never sent again. An order whose answer was lost — `OrderOutcomeUnknown`, a KIS
server error (OPSQ…, a 5xx) that does not prove the order was refused, a
cancellation during the request, or a crash (a `pending` row) — is reconciled
against KIS's daily executions before anything else is done for that user and
stock; it is never re-sent automatically.

Database writes per alert on the way to KIS: the alert (group-committed by the
intake) and the pending order row. After KIS answers, one transaction records the
outcome, closes the alert and queues the chat notice. What the guards read about a
user is cached (`GuardInputs`) and forgotten when storage reports a change.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final, Protocol, TypeVar, cast

from kis.client import BeforeSend, KisClient, ResponseObserver
from kis.env import Environment
from kis.errors import (
    KisApiError,
    KisError,
    KisServerError,
    KisTransportError,
    OrderOutcomeUnknown,
)
from kis.markets import Market, Markets, OrderTypeError, PlannedOrder, default_markets
from kis.models import (
    Account,
    AppCredentials,
    Execution,
    OrderAck,
    OrderType,
    Side,
)
from storage.coordination import Coordinator, SoleInstance
from storage.errors import LeaseLost, OrderAlreadyExists, log_failure
from storage.facade import Storage
from storage.notices import CHECKED_WITH_KIS, Notice, NoticeKind, notice_dedupe_key
from storage.portfolio_notices import subject_from_alert
from storage.portfolio_records import ConfirmationStatus
from storage.records import (
    AlertRecord,
    AlertStatus,
    KeySetRecord,
    OrderRecord,
    OrderStatus,
    OutboxMessage,
    Reason,
)
from storage.repositories.alerts import JOBS_CHANNEL
from storage.repositories.orders import UNRESOLVED, Fence
from storage.repositories.outbox import OutboxEntry
from storage.types import utcnow
from webhook_server.after_hours import AfterHours
from webhook_server.alert import ORIGIN_CLOSE, Alert, JSONValue
from webhook_server.confirm_gate import ConfirmGate
from webhook_server.dispatch import LOCAL, Claim, Route, lease_of
from webhook_server.dryrun import DryRunParts, dry_run
from webhook_server.figures import inquire, size
from webhook_server.guards import (
    FILL_NOT_READY,
    AccountState,
    FillNoticeReadiness,
    GuardInputs,
    Refusal,
    UserState,
    alert_notice,
    below_one_share,
    check_guards,
    resolve_targets,
    unknown_account,
)
from webhook_server.limit_guard import LimitGuard
from webhook_server.log_context import alert_context
from webhook_server.market_hours import MARKET_CLOSED, MarketClock
from webhook_server.metrics import Metrics
from webhook_server.reconcile import (
    NOT_PLACED,
    Outcome,
    Reconciler,
    ended_unfilled,
    kis_day,
)
from webhook_server.sizing import SizedOrder
from webhook_server.store_intake import AcceptedAlert
from webhook_server.workers import Job, KeyedWorkers

log = logging.getLogger(__name__)
_T = TypeVar("_T")



class Wake(Protocol):
    """The notifier's wake-up: given the row just queued, it sends it in queue order
    (a later fill notice handed over directly must not overtake this one)."""

    def __call__(self, message: OutboxMessage | None = None, /) -> None: ...

class SettleLater(Protocol):
    """`webhook_server.settlement.FillSettler`: checks an order's fills against KIS's
    daily executions once its notices are quiet."""

    def settle_later(self, order_id: int) -> None: ...


Hook = Callable[[int], Awaitable[None]]
TRANSPORT_RETRY_DELAY_S: Final = 0.2
LEASE_DRAIN_S: Final = 5.0  # a key handed over waits this long for its alerts in flight
CLAIM_BATCH: Final = 200
SWEEP_EVERY: Final = 5  # claim timer ticks between looks for alerts left half done
STALE_KEYLESS: Final = timedelta(seconds=60)  # a refusal nobody finished: its taker died


@dataclass(slots=True)
class PipelineHooks:
    """Points where tests can stop the pipeline (each gets the alert id)."""

    before_order: Hook | None = None  # guards and sizing passed; no order row yet
    before_send: Hook | None = None  # the order row exists; the request has not left
    after_answer: Hook | None = None  # KIS answered; the answer is not recorded yet


@dataclass(frozen=True, slots=True)
class ResumeReport:
    alerts: int  # accepted-but-unprocessed alerts queued again
    reconciling: int  # orders with an unknown outcome queued for reconciliation


@dataclass(frozen=True, slots=True)
class _Context:
    """Who and where: enough to notify and to call KIS."""

    user_id: int
    chat_id: int
    env: Environment
    creds: AppCredentials
    account: Account
    fence: Fence | None = None  # several instances: the lease the order goes under
    account_id: int | None = None  # moahook's account (its orders, fills, limits)
    label: str = ""  # how notices name the account ("" for a user with one)


def job_key(account_id: int | None, user_id: int, symbol: str) -> tuple[int, str]:
    """Jobs of one stock of one account run in order; an alert row for no account
    (refused) queues with its user's."""
    return (account_id if account_id is not None else -user_id, symbol)


def kis_metrics_observer(metrics: Metrics) -> ResponseObserver:
    """Feeds `KisClient(on_response=…)` into the KIS latency histogram and error counter."""

    def observe(tr_id: str, seconds: float, msg_cd: str | None) -> None:
        metrics.kis_request_latency.labels(tr_id).observe(seconds)
        if msg_cd is None:
            metrics.kis_errors.labels("transport").inc()
        elif _is_error_code(msg_cd):
            metrics.kis_errors.labels(msg_cd).inc()

    return observe


def _is_error_code(msg_cd: str) -> bool:
    # The observer sees msg_cd only; success answers carry codes too (APBK0013, KIOK0000,
    # the paper 40600000…), so count the code families KIS uses for refusals.
    if msg_cd.startswith(("EGW", "OPSQ", "OPSP", "IGW")):
        return True
    return (msg_cd.startswith("APBK") and msg_cd != "APBK0013") or msg_cd == "90000000"


def credentials(keys: KeySetRecord) -> tuple[AppCredentials, Account]:
    return keys.kis_access()


class OrderPipeline:
    def __init__(
        self,
        *,
        storage: Storage,
        kis: KisClient,
        market: MarketClock,
        readiness: FillNoticeReadiness,
        metrics: Metrics,
        markets: Markets | None = None,
        wake: Wake | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_active: int = 512,
        reconcile_attempts: int = 4,
        reconcile_delay_s: float = 1.0,
        hooks: PipelineHooks | None = None,
        db_slots: int = 4,
        settler: SettleLater | None = None,
        fill_notice_wait: float = 5.0,
        resume_fill_notice_wait: float = 15.0,
        coordinator: Coordinator | None = None,
        shared: bool = False,
        claim_every_s: float = 2.0,
    ) -> None:
        """`fill_notice_wait`: how long an alert waits for its user's reconnecting
        fill-notice socket before it is refused (0: refused at once);
        `resume_fill_notice_wait`: the same for alerts resumed at start-up, when every
        socket is connecting for the first time."""
        self._storage = storage
        self._settler = settler
        self._fill_wait = fill_notice_wait
        self._resume_fill_wait = max(resume_fill_notice_wait, fill_notice_wait)
        self._kis = kis
        self._market = market
        self._markets = markets or default_markets()
        self._readiness = readiness
        self._metrics = metrics
        self._wake = wake
        self._clock = clock
        self._hooks = hooks or PipelineHooks()
        self._workers: KeyedWorkers[tuple[int, str]] = KeyedWorkers(
            max_active=max_active, name="order-pipeline"
        )
        self._reconciler = Reconciler(
            kis, self._markets, attempts=reconcile_attempts, delay_s=reconcile_delay_s
        )
        self._db_gate = asyncio.Semaphore(db_slots)
        self._inputs = GuardInputs(self._load_user_state)
        storage.users.on_change(self.forget_user)
        storage.accounts.on_change(self.forget_user)
        storage.key_sets.on_change(self.forget_user)
        storage.options.on_change(self.forget_user)
        # SPEC section 15: risk limits, confirm mode, after-hours reservations
        self._limits = LimitGuard(storage, kis, self._db)
        self._confirm = ConfirmGate(storage, self._db)
        self._after_hours = AfterHours(storage, kis, self._db, self._limits.release)
        # (account, symbol) whose earlier order could not be reconciled: nothing more is
        # sent for it
        self._blocked: dict[tuple[int, str], int] = {}
        # Several instances (SPEC section 12): this instance acts on the alerts of the
        # KIS keys whose leases it holds (lease → epoch), taken from the database.
        self._coordinator = coordinator or SoleInstance()
        self._shared = shared
        self._leases: dict[str, int] = {}
        self._inflight: dict[str | None, int] = {}
        self._settled = asyncio.Condition()
        self._to_claim: set[str | None] = set()
        self._claim_wanted = asyncio.Event()
        self._claim_every = claim_every_s
        self._claimer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"OrderPipeline({self._workers!r})"

    async def _db(self, operation: Coroutine[object, object, _T]) -> _T:
        """At most `db_slots` pipeline database calls at once: SQLite has one writer, and
        the intake's alert writes (the HTTP answers) must not queue behind a backlog."""
        try:
            await self._db_gate.acquire()
        except BaseException:
            operation.close()  # cancelled while waiting: the call never starts
            raise
        try:
            return await operation
        finally:
            self._db_gate.release()

    def set_wake(self, wake: Wake) -> None:
        self._wake = wake

    def forget_user(self, user_id: int) -> None:
        """Drop what the guards cached about a user (pause flag, active environment, chat,
        key sets). Writes through this pipeline's `Storage` call it by themselves; call
        it for changes made any other way."""
        self._inputs.forget(user_id)

    def forget_all_users(self) -> None:
        self._inputs.forget_all()

    async def _load_user_state(self, user_id: int) -> UserState | None:
        user, accounts, key_sets, options = await asyncio.gather(
            self._db(self._storage.users.get(user_id)),
            self._db(self._storage.accounts.for_user(user_id)),
            self._db(self._storage.key_sets.for_user(user_id)),
            self._db(self._storage.options.get(user_id)),
        )
        if user is None:
            return None
        states = tuple(
            AccountState(account, next(
                (k for k in key_sets
                 if k.account_id == account.id and k.environment is account.active_environment),
                None,
            ))
            for account in accounts
        )
        default = next((a for a in states if a.account.is_default), None)
        return UserState(user, None if default is None else default.keys, options, states)

    # -- entry points ---------------------------------------------------------------------

    def submit(self, accepted: AcceptedAlert) -> None:
        """An alert just stored by the intake (in memory: no database polling)."""
        claim = None if accepted.claim is None else Claim(*accepted.claim)
        self._workers.submit(
            job_key(accepted.account_id, accepted.user_id, accepted.alert.symbol),
            self._process_later(accepted.alert_id, accepted.user_id, accepted.alert,
                                claim=claim, account_id=accepted.account_id),
        )

    async def route(self, user_id: int, accounts: tuple[str, ...] = ()) -> list[Route]:
        """Where a new alert of this user goes, one route per account it is for (the
        intake asks before storing it)."""
        state = await self._inputs.get(user_id)
        return [self._route_one(state, target.account_id, target.name)
                for target in resolve_targets(state, accounts)]

    def _route_one(self, state: UserState | None, account_id: int | None, name: str) -> Route:
        if not self._shared:
            return replace(LOCAL, account_id=account_id, name=name)
        account = None if state is None else state.account(account_id)
        lease = lease_of(account.keys if account is not None else None)
        if lease is None:  # no key owns it: this instance refuses it itself
            return Route(None, Claim(None, 0), account_id, name)
        held = self._coordinator.held(lease)
        if held is None or lease not in self._leases:
            return Route(lease, None, account_id, name)  # its owner is signalled
        return Route(lease, Claim(lease, held.epoch), account_id, name)

    def _process_later(
        self,
        alert_id: int,
        user_id: int,
        alert: Alert,
        fill_wait: float | None = None,
        *,
        claim: Claim | None = None,
        account_id: int | None = None,
    ) -> Job:
        return lambda: self._process(alert_id, user_id, alert, fill_wait, claim, account_id)

    def run_stored(self, alert_id: int) -> None:
        """Act on a stored alert now: one confirmed in the chat, or a `/close` sell. It
        is read from the database, so any instance can be woken for it (several
        instances: its key's owner is, through the claims)."""
        if self._shared:
            self._spawn(self._wake_owner(alert_id))
            return
        self._workers.submit((-alert_id, ""), lambda: self._submit_stored(alert_id))

    async def _wake_owner(self, alert_id: int) -> None:
        record = await self._db(self._storage.alerts.get(alert_id))
        if record is None or record.status is not AlertStatus.ACCEPTED:
            return
        if record.lease is None:
            self.claim_soon(None)  # any instance takes it, then hands it to its key's owner
        else:
            await self._storage.signals.notify(JOBS_CHANNEL, record.lease)

    async def _submit_stored(self, alert_id: int) -> None:
        record = await self._db(self._storage.alerts.get(alert_id))
        if record is None or record.status not in (AlertStatus.ACCEPTED,
                                                    AlertStatus.PROCESSING):
            return  # acted on already, or still waiting for the user
        alert = _alert_of(record)
        if alert is None:
            await self._db(self._storage.alerts.mark_failed(
                alert_id, Reason("stored alert is unreadable", "unreadable_alert")
            ))
            return
        self._workers.submit(
            job_key(record.account_id, record.user_id, alert.symbol),
            lambda: self._process_if_open(alert_id, record),
        )

    async def _process_if_open(self, alert_id: int, record: AlertRecord) -> None:
        # Several wake-ups for one alert queue behind each other: only the first acts.
        fresh = await self._db(self._storage.alerts.get(alert_id))
        alert = _alert_of(fresh) if fresh is not None else None
        if alert is not None:
            await self._process(alert_id, record.user_id, alert,
                                account_id=record.account_id)

    def _reconcile_later(self, order: OrderRecord) -> Job:
        return lambda: self._reconcile_job(order)

    async def resume(self, *, gate: Job | None = None) -> ResumeReport:
        """At start, before alerts arrive: reconcile orders of unknown outcome, then
        queue accepted-but-unprocessed alerts. Each (user, symbol) reconciles first.

        Resumed alerts wait (up to `resume_fill_notice_wait`) for their own user's
        fill-notice socket, which is still connecting at start-up — never for anyone
        else's, so one slow socket, or restarts in quick succession, cannot starve the
        others. `gate`, when given, is awaited by each job first (tests park work there).

        Several instances: nothing here; each key's owner carries on with the key's work
        when it takes the key's lease (`gained`).
        """
        if self._shared:
            return ResumeReport(alerts=0, reconciling=0)
        open_alerts = await self._db(self._storage.alerts.unprocessed())
        unresolved = await self._db(self._storage.orders.unknown_orders())
        return await self._carry_on(open_alerts, unresolved, None, gate)

    async def _carry_on(
        self,
        open_alerts: Sequence[AlertRecord],
        unknown: Sequence[OrderRecord],
        claim: Claim | None,
        gate: Job | None = None,
    ) -> ResumeReport:
        """What a restart (or a new owner of a key) does with what was left: orders of
        unknown outcome reconciled first, then the alerts nobody finished."""
        unresolved: dict[int, OrderRecord] = {order.id: order for order in unknown}
        to_process: list[tuple[AlertRecord, Alert]] = []
        finished = 0
        for record in open_alerts:
            order = await self._db(self._storage.orders.by_alert(record.id))
            if order is not None:
                if order.status in UNRESOLVED:
                    unresolved.setdefault(order.id, order)
                else:  # its order's outcome is known: just close the alert
                    await self._finish_alert_for(order)
                    finished += 1
                continue
            alert = _alert_of(record)
            if alert is None:
                await self._db(
                    self._storage.alerts.mark_failed(
                        record.id, Reason("stored alert is unreadable", "unreadable_alert")
                    )
                )
                continue
            to_process.append((record, alert))
        for order in sorted(unresolved.values(), key=lambda o: o.id):
            self._workers.submit(
                job_key(order.account_id, order.user_id, order.symbol),
                _gated(gate, self._reconcile_later(order)),
            )
        for record, alert in to_process:
            job = _gated(
                gate,
                self._process_later(record.id, record.user_id, alert, self._resume_fill_wait,
                                    claim=claim, account_id=record.account_id),
            )
            self._workers.submit(job_key(record.account_id, record.user_id, alert.symbol), job)
        log.info(
            "%s: %d alerts queued, %d orders to reconcile, %d closed",
            "resume" if claim is None else "taking over", len(to_process), len(unresolved),
            finished,
        )
        return ResumeReport(alerts=len(to_process), reconciling=len(unresolved))

    # -- several instances: the work of the keys this instance holds ----------------------

    async def gained(self, name: str, epoch: int) -> None:
        """This instance now owns the KIS key `name`: carry on with what its previous
        owner left, exactly as after a restart, then take its alerts as they come."""
        self._leases[name] = epoch
        self._spawn(self._take_over(name, epoch))

    async def losing(self, name: str) -> None:
        """Another instance will own the key: take nothing more for it, and let what is
        in flight finish (bounded: an order cut off is recorded unknown, reconciled by
        the next owner)."""
        self._leases.pop(name, None)
        self._to_claim.discard(name)
        try:
            async with asyncio.timeout(LEASE_DRAIN_S), self._settled:
                await self._settled.wait_for(lambda: self._inflight.get(name, 0) == 0)
        except TimeoutError:
            log.warning("key handed over with %d alert(s) still in flight",
                        self._inflight.get(name, 0))

    async def _take_over(self, name: str, epoch: int, *, reconcile: bool = True) -> None:
        """`reconcile`: also the orders of unknown outcome (only when the key is gained:
        later, an order of this instance may be on its way)."""
        try:
            me = self._coordinator.instance_id
            left = await self._db(self._storage.alerts.take_over(me, epoch, name))
            unknown = (
                await self._db(self._storage.orders.unknown_orders(lease=name))
                if reconcile else []
            )
            if self._leases.get(name) != epoch:
                return  # lost again meanwhile
            if not reconcile and not left:
                return
            await self._carry_on(left, unknown, Claim(name, epoch))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log_failure(log, exc, "taking over a key's alerts failed; the sweep retries")
        self.claim_soon(name)

    def claim_soon(self, lease: str | None) -> None:
        """Alerts for `lease` wait in the database (a signal said so, or a timer)."""
        if lease is None or lease in self._leases:
            self._to_claim.add(lease)
            self._claim_wanted.set()

    def start_claiming(self) -> None:
        """Several instances: take alerts from the database as their owners' signals
        and a timer say (a lost signal costs latency only)."""
        if not self._shared or self._claimer is not None:
            return
        self._storage.signals.listen(JOBS_CHANNEL, lambda lease: self.claim_soon(lease))
        self._storage.signals.on_reconnect(self._claim_all)
        self._claimer = asyncio.get_running_loop().create_task(self._claim_loop(),
                                                                name="alert claims")

    def _claim_all(self) -> None:
        for lease in [None, *self._leases]:
            self.claim_soon(lease)

    async def _claim_loop(self) -> None:
        me = self._coordinator.instance_id
        for tick in itertools.count(1):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._claim_wanted.wait(), self._claim_every)
            if not self._claim_wanted.is_set():
                self._claim_all()  # the timer: look everywhere once in a while
                if tick % SWEEP_EVERY == 0:
                    # Alerts an instance took and never finished (it died while the
                    # lease was moving): carried on here, their key's owner now.
                    for held, held_epoch in list(self._leases.items()):
                        self._spawn(self._take_over(held, held_epoch, reconcile=False))
            self._claim_wanted.clear()
            pending, self._to_claim = self._to_claim, set()
            for lease in sorted(pending, key=lambda lease: lease or ""):
                epoch = 0 if lease is None else self._leases.get(lease)
                if epoch is None:
                    continue
                try:
                    taken = await self._db(self._storage.alerts.claim(
                        me, epoch, lease, CLAIM_BATCH,
                        stale_after=STALE_KEYLESS if lease is None else None,
                    ))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("claiming alerts failed (%s); retrying", type(exc).__name__)
                    self._to_claim.add(lease)
                    continue
                for record in taken:
                    alert = _alert_of(record)
                    if alert is None:
                        await self._db(self._storage.alerts.mark_failed(
                            record.id, Reason("stored alert is unreadable", "unreadable_alert")
                        ))
                        continue
                    self._workers.submit(
                        job_key(record.account_id, record.user_id, alert.symbol),
                        self._process_later(record.id, record.user_id, alert,
                                            claim=Claim(lease, epoch),
                                            account_id=record.account_id),
                    )
                if len(taken) >= CLAIM_BATCH:
                    self.claim_soon(lease)  # more are waiting

    def _spawn(self, coro: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def dry_run(self, user_id: int, body: bytes) -> list[Notice]:
        """What `body` would do for this user now, per account, sending no order
        (`/test`)."""
        parts = DryRunParts(
            kis=self._kis, markets=self._markets, market=self._market,
            readiness=self._readiness, clock=self._clock,
            user_state=self._inputs.get, blocked=lambda account, symbol: self._blocked.get(
                (account, symbol)
            ),
            credentials=credentials,
        )
        return await dry_run(parts, user_id, body)

    async def wait_idle(self) -> None:
        await self._workers.wait_idle()

    async def close(self) -> None:
        """Stop: running jobs are cancelled (an order in flight is recorded as unknown)."""
        tasks = [t for t in (self._claimer, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._claimer = None
        await self._workers.close()

    # -- one alert ------------------------------------------------------------------------

    async def _process(
        self,
        alert_id: int,
        user_id: int,
        alert: Alert,
        fill_wait: float | None = None,
        claim: Claim | None = None,
        account_id: int | None = None,
    ) -> None:
        lease = None if claim is None else claim.lease
        if self._shared and claim is not None and lease is not None and (
            self._leases.get(lease) != claim.epoch
        ):
            # Queued here before the key's lease went to another instance: its new owner
            # acts on it (the release is a no-op when the new owner took it already).
            await self._db(self._storage.alerts.release(
                alert_id, self._coordinator.instance_id, claim.epoch
            ))
            return
        self._inflight[lease] = self._inflight.get(lease, 0) + 1
        try:
            with alert_context(user_id, alert_id):
                await self._process_alert(
                    alert_id, user_id, alert,
                    self._fill_wait if fill_wait is None else fill_wait, claim, account_id,
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("alert %d failed in the pipeline", alert_id)
            with contextlib.suppress(Exception):
                await self._db(
                    self._storage.alerts.mark_failed(
                        alert_id,
                        Reason(
                            f"internal error ({type(exc).__name__})",
                            "internal_error",
                            {"detail": type(exc).__name__},
                        ),
                    )
                )
        finally:
            await self._done_with(lease)

    async def _done_with(self, lease: str | None) -> None:
        self._inflight[lease] -= 1
        async with self._settled:
            self._settled.notify_all()

    async def _process_alert(
        self,
        alert_id: int,
        user_id: int,
        alert: Alert,
        fill_wait: float,
        claim: Claim | None = None,
        account_id: int | None = None,
    ) -> None:
        state = await self._inputs.get(user_id)
        if state is None:
            await self._db(
                self._storage.alerts.mark_failed(
                    alert_id, Reason("the user no longer exists", "user_gone")
                )
            )
            return
        user, options = state.user, state.options
        market = self._markets.of(alert.instrument)
        account = state.account(account_id)
        if account is None:  # no account of that name, or deleted since the alert came
            name = alert.accounts[0] if alert.accounts else ""
            base = alert_notice(alert, user.active_environment.value, market, name)
            await self._refuse(alert_id, user_id, user.chat_id, base, unknown_account(name))
            return
        keys, env = account.keys, account.env
        fence: Fence | None = None
        if self._shared and claim is not None:
            lease = lease_of(keys)
            if lease is not None and lease != claim.lease:
                # The account's keys or environment changed since the alert came: it
                # belongs to another key's owner now (perhaps this instance: it hears the
                # signal).
                await self._db(self._storage.alerts.reroute(
                    alert_id, self._coordinator.instance_id, claim.epoch, lease
                ))
                return
            if lease is not None:
                fence = Fence(lease, self._coordinator.instance_id, claim.epoch)
        label = state.label(account.account)
        base = alert_notice(alert, env.value, market, label)
        from_chat = alert.origin == ORIGIN_CLOSE
        confirming = options.confirm and not from_chat
        confirmed = False
        if confirming:
            asked = await self._confirm.decision(alert_id)
            if asked is not None and asked.status is not ConfirmationStatus.CONFIRMED:
                return  # still waiting for the user, or skipped / expired
            confirmed = asked is not None
        now = self._clock()

        def guards() -> Refusal | None:
            return check_guards(
                user=replace(user, paused=False) if from_chat else user,  # /close works paused
                account=account,
                readiness=self._readiness,
                alert=alert,
                now=self._clock(),
                market=self._market,
                hours=market.hours,
                check_lag=not confirmed,
            )

        refusal = guards()
        if refusal is not None and refusal.code == FILL_NOT_READY and fill_wait > 0:
            # A socket that is reconnecting: hold the alert (bounded), then judge again.
            await self._readiness.wait_ready(account.account.id, env, fill_wait)
            refusal = guards()
        reserve = (
            refusal is not None
            and refusal.code == MARKET_CLOSED
            and not from_chat
            and AfterHours.applies(options, market, env, now)
        )
        if reserve:
            refusal = None
        if refusal is None and alert.action is not None:
            refusal = _order_type_refusal(market, env, alert.order_type, alert.action)
        if refusal is not None or keys is None:
            await self._refuse(alert_id, user_id, user.chat_id, base, refusal)
            return
        creds, kis_account = credentials(keys)
        ctx = _Context(user_id, user.chat_id, env, creds, kis_account, fence,
                       account.account.id, label)
        if confirming and not confirmed:
            self._woken(
                await self._confirm.ask(
                    alert_id=alert_id, user_id=user_id, chat_id=user.chat_id, env=env.value,
                    seconds=options.confirm_seconds or 0, alert=alert, account=label,
                )
            )
            return
        blocked = await self._still_blocked(alert.symbol, ctx)
        if blocked is not None:
            await self._refuse(
                alert_id,
                user_id,
                ctx.chat_id,
                base,
                Refusal(
                    "earlier_unknown",
                    f"the outcome of an earlier order of {alert.symbol} (#{blocked}) is still "
                    "unknown; nothing more is sent for it until it is checked (/orders)",
                    "earlier_unknown",
                    {"order_id": str(blocked)},
                ),
            )
            return

        sized = await self._size(alert_id, alert, market, ctx, base)
        if sized is None:
            return
        if isinstance(sized, Refusal):
            await self._refuse(alert_id, user_id, ctx.chat_id, base, sized)
            return
        if sized.quantity < 1:
            await self._refuse(alert_id, user_id, ctx.chat_id, base, below_one_share())
            return
        if not sized.order_type.has_price and alert.action is None:
            # position mode learns the side only now: check the order type for it
            late = _order_type_refusal(market, env, sized.order_type, sized.side)
            if late is not None:
                await self._refuse(alert_id, user_id, ctx.chat_id, base, late)
                return
        if not from_chat:  # /close is the way out: no caps on it
            over = await self._limits.check(
                alert_id=alert_id, user_id=user_id, limits=options.limits, market=market,
                inst=alert.instrument, sized=sized, creds=creds, now=now,
                account_id=account.account.id,
            )
            if over is not None:
                await self._refuse(alert_id, user_id, ctx.chat_id, base, over)
                return
        if sized.side is Side.SELL and sized.cost is not None:
            await self._db(
                self._storage.activity.record_sale_cost(alert_id, sized.cost,
                                                        market.currency.code)
            )
        if reserve:
            self._woken(
                await self._after_hours.reserve(
                    alert_id=alert_id, user_id=user_id, chat_id=ctx.chat_id, creds=creds,
                    account=kis_account, market=market, alert=alert, sized=sized,
                    subject=subject_from_alert(alert.to_json(), env.value, label), now=now,
                    account_id=account.account.id,
                )
            )
            return
        await self._place(alert_id, alert, market, ctx, sized, name="")

    async def _size(
        self, alert_id: int, alert: Alert, market: Market, ctx: _Context, base: Notice
    ) -> SizedOrder | Refusal | None:
        """Fresh price/holding from KIS, then the size; None when KIS could not say."""
        try:
            figures = await inquire(self._kis, market, ctx.creds, ctx.account, alert)
        except KisError as exc:
            reason = _kis_reason(exc)
            log.warning("alert %d: KIS inquiry failed: %s", alert_id, type(exc).__name__)
            await self._fail_alert(
                alert_id, ctx, base,
                Reason(f"KIS inquiry failed: {reason}", "inquiry_failed", {"detail": reason}),
            )
            return None
        return size(alert, market, figures)

    async def _place(
        self,
        alert_id: int,
        alert: Alert,
        market: Market,
        ctx: _Context,
        sized: SizedOrder,
        name: str,
    ) -> None:
        limit = sized.price if sized.order_type.has_price else None
        request = market.plan(
            ctx.env, alert.instrument, sized.side, sized.quantity, sized.order_type, limit,
            sized.last,
        )
        notice = Notice(
            kind=NoticeKind.ORDER_ACCEPTED,
            env=ctx.env.value,
            symbol=alert.symbol,
            side=sized.side.value,
            quantity=sized.quantity,
            order_type=request.order_type.value,
            price=request.kis_price or None,
            comment=alert.comment or "",
            market=market.code,
            exchange=alert.exchange if market.code != "KRX" else "",
            currency=market.currency.code,
            marketable=request.marketable,
            ignored_price=alert.ignored_price or "",
            account=ctx.label,
        )
        if self._hooks.before_order is not None:
            await self._hooks.before_order(alert_id)
        written: list[OrderRecord] = []

        async def write_order_row() -> None:
            """The KIS client calls this with the token and the rate-limit slot in hand,
            right before the request is written: a crash before it leaves no row, so the
            alert is new work after a restart; a row means "maybe sent"."""
            if written:
                return  # a retry of a request that never left: the row is there
            fence = ctx.fence
            if fence is not None and not self._coordinator.valid(fence.lease, fence.epoch):
                raise LeaseLost(fence.lease)  # another instance may own the key by now
            written.append(
                await self._db(
                    self._storage.orders.create_pending(
                        alert_id,
                        user_id=ctx.user_id,
                        environment=ctx.env,
                        symbol=alert.symbol,
                        side=sized.side.value,
                        order_type=request.order_type.value,
                        quantity=sized.quantity,
                        price=request.kis_price or None,
                        name=name or None,
                        market=market.code,
                        exchange=alert.exchange,
                        currency=market.currency.code,
                        fence=fence,
                        account_id=ctx.account_id,
                    )
                )
            )
            if self._hooks.before_send is not None:
                await self._hooks.before_send(alert_id)

        try:
            ack = await self._send(
                alert_id, written, write_order_row, market, request, ctx, notice
            )
            if ack is None:
                return
            order = written[0]
            if self._hooks.after_answer is not None:
                await self._hooks.after_answer(alert_id)
            await self._accepted(order, ack.order_no, ack.branch, ctx, notice)
        except OrderAlreadyExists:
            # This alert's order exists already (a resumed alert): never a second one.
            log.warning("alert %d already has an order; not sending again", alert_id)
        except LeaseLost:
            # Nothing was written or sent: the key's new owner acts on the alert.
            log.warning("alert %d: the key's lease moved on; handed to its new owner",
                        alert_id)
            fence = ctx.fence
            if fence is not None:
                await self._db(self._storage.alerts.release(alert_id, fence.holder,
                                                            fence.epoch))
        except Exception:
            if written:
                # The outcome may be unrecorded (the row still `pending`, e.g. a database
                # error after KIS accepted): nothing more for this stock until reconciled.
                self._blocked[job_key(ctx.account_id, ctx.user_id, alert.symbol)] = (
                    written[0].id
                )
            raise

    async def _send(
        self,
        alert_id: int,
        written: list[OrderRecord],
        before_send: BeforeSend,
        market: Market,
        request: PlannedOrder,
        ctx: _Context,
        notice: Notice,
    ) -> OrderAck | None:
        """Send once. Returns the ack, or None when the outcome was recorded otherwise.

        Nothing is written between the pending row (`before_send`, in `written` once it
        exists) and the request: a `pending` row is treated exactly like `sent` when
        reconciling, and the answer's transaction records when it was sent. An error
        before the row existed proves nothing left: the alert fails without an order."""
        try:
            ack = await self._send_retrying_unsent(ctx, market, request, before_send)
        except asyncio.CancelledError:
            if written:
                # Stopped while the request may have been on the wire: reconcile later.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(self._unknown_after_cancel(written[0]))
            raise
        except (KisError, OrderOutcomeUnknown) as exc:
            if not written:
                await self._failed_unsent(alert_id, ctx, notice, exc)
                return None
            await self._send_failed(written[0], ctx, notice, exc)
            return None
        return ack

    async def _send_failed(
        self, order: OrderRecord, ctx: _Context, notice: Notice, exc: KisError
    ) -> None:
        if isinstance(exc, OrderOutcomeUnknown):
            await self._unknown(order, ctx, notice, str(exc))
        elif isinstance(exc, KisServerError):
            # OPSQ… or a 5xx: a gateway fault that does not prove the order was refused.
            await self._unknown(order, ctx, notice, _kis_reason(exc))
        elif isinstance(exc, KisApiError):
            await self._failed(
                order, ctx, notice, kis_refusal(exc), exc.msg_cd or None, rejected=True
            )
        else:
            await self._failed(
                order, ctx, notice,
                Reason(f"could not reach KIS: {exc}", "kis_unreachable", {"detail": str(exc)}),
                None, rejected=False,
            )

    async def _failed_unsent(
        self, alert_id: int, ctx: _Context, notice: Notice, exc: KisError
    ) -> None:
        """The order never left (no token, no rate-limit slot, KIS unreachable): the alert
        fails with the reason; there is no order row to record it on."""
        if isinstance(exc, KisApiError):
            detail = _kis_reason(exc)
            reason = Reason(f"order not sent: {detail}", "not_sent", {"detail": detail})
        else:
            reason = Reason(
                f"order not sent: could not reach KIS: {exc}", "kis_unreachable",
                {"detail": str(exc)},
            )
        log.warning("alert %d: order not sent: %s", alert_id, type(exc).__name__)
        await self._fail_alert(alert_id, ctx, notice, reason)

    async def _fail_alert(
        self, alert_id: int, ctx: _Context, notice: Notice, reason: Reason
    ) -> None:
        """The alert failed before any order existed: closed with its chat notice."""
        queued = await self._db(
            self._storage.alerts.finish(
                alert_id,
                AlertStatus.FAILED,
                reason,
                notice=_entry(
                    ctx.chat_id,
                    replace(notice, kind=NoticeKind.ORDER_FAILED, reason=reason.text,
                            reason_key=reason.key, reason_params=dict(reason.params)),
                    f"alert_failed:{alert_id}",
                ),
                user_id=ctx.user_id,
            )
        )
        self._metrics.orders.labels("failed").inc()
        self._woken(queued)

    async def _send_retrying_unsent(
        self, ctx: _Context, market: Market, request: PlannedOrder, before_send: BeforeSend
    ) -> OrderAck:
        try:
            return await market.place(
                self._kis, ctx.creds, ctx.account, request, before_send=before_send
            )
        except KisTransportError:
            # Nothing left (connect failed): one more try is safe. Never for unknown.
            await asyncio.sleep(TRANSPORT_RETRY_DELAY_S)
            return await market.place(
                self._kis, ctx.creds, ctx.account, request, before_send=before_send
            )

    async def _unknown_after_cancel(self, order: OrderRecord) -> None:
        await self._db(
            self._storage.orders.record_outcome(
                order, OrderStatus.UNKNOWN, Reason("stopped while the order was sent",
                                                   "outcome_unknown")
            )
        )
        self._metrics.orders.labels("unknown").inc()

    # -- outcomes -------------------------------------------------------------------------

    async def _accepted(
        self,
        order: OrderRecord,
        order_no: str,
        branch: str | None,
        ctx: _Context,
        notice: Notice,
        dedupe: str | None = None,
    ) -> OrderRecord:
        """`dedupe`: the verdict on an unknown order has its own key, so it is sent even
        when KIS's acceptance notice (same key as the order-cash answer's) went first."""
        recorded, queued = await self._db(
            self._storage.orders.record_accepted(
                order,
                order_no,
                branch,
                notice=_entry(
                    ctx.chat_id,
                    replace(notice, order_no=order_no),
                    dedupe or notice_dedupe_key(
                        NoticeKind.ORDER_ACCEPTED, ctx.user_id, ctx.env.value, order_no,
                        ctx.account_id,
                    ),
                ),
            )
        )
        self._metrics.orders.labels("accepted").inc()
        self._woken(queued)
        if (
            self._settler is not None
            and recorded.order_type == "market"
            and recorded.filled_qty < recorded.quantity
        ):
            # A market order fills at once: if no fill notice says so (PAPER notices go
            # missing, KIS.md 11), KIS's daily executions are asked once it is quiet.
            self._settler.settle_later(recorded.id)
        return recorded

    async def _failed(
        self,
        order: OrderRecord,
        ctx: _Context,
        notice: Notice,
        reason: Reason,
        msg_cd: str | None,
        *,
        rejected: bool,
        kind: NoticeKind | None = None,
        dedupe: str | None = None,
    ) -> None:
        """The order, its alert and the chat notice all carry `reason` (the bot renders
        its key in the user's language; KIS's msg1 stays as KIS wrote it). A refusal by
        KIS reads as one in the chat, as in `/orders`."""
        _, queued = await self._db(
            self._storage.orders.record_outcome(
                order,
                OrderStatus.REJECTED if rejected else OrderStatus.FAILED,
                reason,
                msg_cd,
                alert_status=AlertStatus.FAILED,
                alert_reason=replace(reason, text=f"order failed: {reason.text}"),
                notice=_entry(
                    ctx.chat_id,
                    replace(
                        notice,
                        kind=kind or (
                            NoticeKind.ORDER_REJECTED if rejected else NoticeKind.ORDER_FAILED
                        ),
                        reason=reason.text,
                        reason_key=reason.key,
                        reason_params=dict(reason.params),
                    ),
                    dedupe or f"order_failed:{order.id}",
                ),
            )
        )
        self._metrics.orders.labels("rejected" if rejected else "failed").inc()
        self._woken(queued)
        await self._limits.release(order.alert_id)  # not placed: its share of the day

    async def _unknown(self, order: OrderRecord, ctx: _Context, notice: Notice, why: str) -> None:
        log.warning("order %d: outcome unknown (%s); reconciling", order.id, why)
        fresh, queued = await self._db(
            self._storage.orders.record_outcome(
                order,
                OrderStatus.UNKNOWN,
                Reason("no answer from KIS", "outcome_unknown"),
                notice=_entry(
                    ctx.chat_id,
                    replace(
                        notice,
                        kind=NoticeKind.ORDER_UNKNOWN,
                        reason_key="outcome_unknown",
                        reason="KIS did not answer; checking whether the order was placed",
                    ),
                    f"order_unknown:{order.id}",
                ),
            )
        )
        self._metrics.orders.labels("unknown").inc()
        self._woken(queued)
        await self._reconcile(fresh, ctx)

    async def _refuse(
        self, alert_id: int, user_id: int, chat_id: int, base: Notice, refusal: Refusal | None
    ) -> None:
        refusal = refusal or Refusal("no_keys", "no validated keys (/keys)", "no_keys")
        queued = await self._db(
            self._storage.alerts.finish(
                alert_id,
                AlertStatus.REFUSED,
                Reason(refusal.reason, refusal.reason_key, refusal.params),
                notice=_entry(
                    chat_id,
                    replace(
                        base,
                        reason=refusal.reason,
                        reason_key=refusal.reason_key,
                        reason_params=dict(refusal.params),
                    ),
                    f"order_refused:{alert_id}",
                ),
                user_id=user_id,
            )
        )
        self._metrics.alerts_refused.labels(refusal.code).inc()
        self._woken(queued)

    # -- reconciliation -------------------------------------------------------------------

    async def _still_blocked(self, symbol: str, ctx: _Context) -> int | None:
        """The earlier order that still blocks this stock of the account, after one more
        attempt to settle it: a block would otherwise last until the next restart."""
        key = job_key(ctx.account_id, ctx.user_id, symbol)
        blocked = self._blocked.get(key)
        if blocked is None:
            return None
        order = await self._db(self._storage.orders.get(blocked))
        if order is None or order.status not in UNRESOLVED:
            self._blocked.pop(key, None)  # settled meanwhile (e.g. by a fill notice)
            return None
        try:
            await self._reconcile(order, ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciling order %d failed again", order.id)
        return self._blocked.get(key)

    async def _reconcile_job(self, order: OrderRecord) -> None:
        with alert_context(order.user_id, order.alert_id):
            await self._reconcile_job_in_context(order)

    async def _reconcile_job_in_context(self, order: OrderRecord) -> None:
        key = job_key(order.account_id, order.user_id, order.symbol)
        try:
            state = await self._inputs.get(order.user_id)
            account = None if state is None else state.account(order.account_id)
            keys = None
            if account is not None:
                keys = await self._db(self._storage.key_sets.get(
                    order.user_id, order.environment, account_id=account.account.id
                ))
            if state is None or account is None or keys is None:
                log.warning("order %d: no user/keys left to reconcile with", order.id)
                self._blocked[key] = order.id
                return
            creds, kis_account = credentials(keys)
            ctx = _Context(state.user.id, state.user.chat_id, order.environment, creds,
                           kis_account, None, account.account.id, state.label(account.account))
            await self._reconcile(order, ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciling order %d failed", order.id)
            self._blocked[key] = order.id

    async def _reconcile(self, order: OrderRecord, ctx: _Context) -> None:
        async def taken(order_no: str) -> bool:
            other = await self._db(
                self._storage.orders.by_order_no(ctx.user_id, order_no, ctx.env,
                                                 account_id=ctx.account_id)
            )
            # KIS numbers orders per day: the same number on another day is another order.
            return (
                other is not None and other.id != order.id and kis_day(other) == kis_day(order)
            )

        verdict = await self._reconciler.check(order, ctx.creds, ctx.account, taken)
        key = job_key(ctx.account_id, order.user_id, order.symbol)
        notice = Notice(
            kind=NoticeKind.ORDER_ACCEPTED,
            env=ctx.env.value,
            symbol=order.symbol,
            name=order.name or "",
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            price=order.price,
            market=order.market,
            exchange=order.exchange if order.market != "KRX" else "",
            currency=order.currency,
            account=ctx.label,
        )
        if verdict.outcome is Outcome.FOUND and verdict.execution is not None:
            found = verdict.execution
            self._blocked.pop(key, None)
            await self._db(
                self._storage.audit.record(
                    order.user_id,
                    "order.reconciled",
                    {
                        "order_id": order.id,
                        "found": True,
                        "order_no": found.order_no,
                    },
                )
            )
            log.info("order %d reconciled: placed at KIS as %s", order.id, found.order_no)
            ended = ended_unfilled(found)
            verdict_key = f"order_verdict:{order.id}"
            if ended is None:
                placed = replace(
                    notice, reason_key=CHECKED_WITH_KIS, filled=found.filled_qty,
                    ordered=found.order_qty or order.quantity,
                )
                recorded = await self._accepted(
                    order, found.order_no, found.branch or None, ctx, placed, verdict_key
                )
                await self._take_kis_fills(recorded, found)
            else:  # it reached KIS, which then refused or cancelled all of it
                await self._failed(
                    order, ctx, notice,
                    Reason(
                        f"{ended} at KIS as order {found.order_no} (checked daily executions)",
                        f"kis_ended_{ended}",
                        {"order_no": found.order_no},
                    ),
                    None, rejected=True, kind=NoticeKind.ORDER_REJECTED, dedupe=verdict_key,
                )
        elif verdict.outcome is Outcome.NOT_FOUND:
            self._blocked.pop(key, None)
            await self._db(
                self._storage.audit.record(
                    order.user_id,
                    "order.reconciled",
                    {
                        "order_id": order.id,
                        "found": False,
                    },
                )
            )
            log.info("order %d reconciled: not placed at KIS", order.id)
            await self._failed(
                order, ctx, notice, Reason(NOT_PLACED, "not_placed"), None, rejected=False,
                kind=NoticeKind.ORDER_NOT_PLACED, dedupe=f"order_verdict:{order.id}",
            )
        else:
            # KIS could not be asked: leave it unknown and send nothing more for it.
            self._blocked[key] = order.id
            await self._db(
                self._storage.orders.mark_unknown(
                    order.id,
                    Reason(
                        "could not check KIS's daily executions; still unknown",
                        "reconcile_failed",
                    ),
                )
            )
            log.warning("order %d: could not reconcile (%s)", order.id, verdict.error)

    async def _take_kis_fills(self, order: OrderRecord, found: Execution) -> None:
        """Fills KIS reports for a reconciled order that no notice brought (they came
        while its outcome was unknown): recorded as KIS shows them. The verdict notice
        already names them."""
        if found.filled_qty <= order.filled_qty:
            return
        amount = found.avg_price * found.filled_qty
        await self._db(
            self._storage.orders.record_settlement(
                order.id, found.filled_qty, amount, lambda before, after: None
            )
        )

    async def _finish_alert_for(self, order: OrderRecord) -> None:
        if order.status in (OrderStatus.REJECTED, OrderStatus.FAILED):
            await self._db(
                self._storage.alerts.mark_failed(
                    order.alert_id,
                    Reason(
                        f"order failed: {order.reason or order.status.value}",
                        order.reason_key or "",
                        order.reason_params or {},
                    ),
                )
            )
        else:
            await self._db(self._storage.alerts.mark_done(order.alert_id))

    # -- notices --------------------------------------------------------------------------

    def _woken(self, queued: OutboxMessage | None) -> None:
        wake_notifier(self._wake, queued)


def wake_notifier(wake: Wake | None, queued: OutboxMessage | None) -> None:
    """Hand a queued notice to the notifier; a failing wake-up never breaks the caller
    (the notice is stored: the notifier's poll sends it)."""
    if queued is None or wake is None:
        return
    try:
        wake(queued)
    except Exception:
        log.exception("waking the notifier failed")


def _order_type_refusal(
    market: Market, env: Environment, order_type: OrderType, side: Side
) -> Refusal | None:
    try:
        market.check_order_type(env, order_type, side)
    except OrderTypeError as exc:
        return Refusal("order_type", str(exc), "order_type", {"detail": str(exc)})
    return None


def _entry(chat_id: int, notice: Notice, dedupe: str) -> OutboxEntry:
    return OutboxEntry(chat_id, notice.kind.value, notice.to_payload(), dedupe)


def _gated(gate: Job | None, job: Job) -> Job:
    if gate is None:
        return job

    async def run() -> None:
        await gate()
        await job()

    return run


def _alert_of(record: AlertRecord) -> Alert | None:
    if record.parsed is None or record.status not in (
        AlertStatus.ACCEPTED,
        AlertStatus.PROCESSING,
    ):
        return None
    try:
        return Alert.from_json(cast("dict[str, JSONValue]", dict(record.parsed)))
    except (ValueError, KeyError, TypeError):
        return None


def kis_refusal(exc: KisApiError) -> Reason:
    """KIS refused the order: its code and msg1 as KIS wrote them, in the bot's frame."""
    return Reason(
        _kis_reason(exc), "kis_rejected", {"code": exc.msg_cd or "-", "message": exc.msg1 or "-"}
    )


def _kis_reason(exc: KisError) -> str:
    if isinstance(exc, KisApiError):
        text = exc.msg1 or "(no message)"
        return f"[{exc.msg_cd}] {text}" if exc.msg_cd else text
    return str(exc)
