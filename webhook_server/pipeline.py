"""The order pipeline: accepted alert → guards → sizing → one KIS order, exactly once.

Alerts arrive in memory from the intake (`submit`) and, after a restart, from the
database (`resume`). Jobs are keyed by (user, symbol) so one stock of one user is
handled in order while everything else runs in parallel.

Exactly once: the order row (one per alert, enforced by the database) is written
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
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final, Protocol, TypeVar, cast

from kis.client import KisClient, ResponseObserver
from kis.env import Environment
from kis.errors import (
    KisApiError,
    KisError,
    KisServerError,
    KisTransportError,
    OrderOutcomeUnknown,
)
from kis.markets import Held, Market, Markets, OrderTypeError, PlannedOrder, default_markets
from kis.models import (
    Account,
    AppCredentials,
    OrderAck,
    OrderType,
    Side,
)
from storage.errors import OrderAlreadyExists
from storage.facade import Storage
from storage.notices import Notice, NoticeKind, notice_dedupe_key
from storage.portfolio_notices import subject_from_alert
from storage.portfolio_records import ConfirmationStatus
from storage.records import (
    AlertRecord,
    AlertStatus,
    KeySetRecord,
    OrderRecord,
    OrderStatus,
    OutboxMessage,
)
from storage.repositories.orders import UNRESOLVED
from storage.repositories.outbox import OutboxEntry
from storage.types import utcnow
from webhook_server.after_hours import AfterHours
from webhook_server.alert import ORIGIN_CLOSE, Alert, JSONValue, Position, Quantity
from webhook_server.confirm_gate import ConfirmGate
from webhook_server.guards import (
    FillNoticeReadiness,
    GuardInputs,
    Refusal,
    UserState,
    below_one_share,
    check_guards,
    sizing_refusal,
)
from webhook_server.limit_guard import LimitGuard
from webhook_server.market_hours import MARKET_CLOSED, MarketClock
from webhook_server.metrics import Metrics
from webhook_server.reconcile import (
    NOT_PLACED,
    Outcome,
    Reconciler,
    ended_unfilled,
    kis_day,
)
from webhook_server.sizing import SizedOrder, SizingRefusal, needs, size_order
from webhook_server.store_intake import AcceptedAlert
from webhook_server.workers import Job, KeyedWorkers

log = logging.getLogger(__name__)
_T = TypeVar("_T")



class Wake(Protocol):
    """The notifier's wake-up: given the row just queued, it sends it in queue order
    (a later fill notice handed over directly must not overtake this one)."""

    def __call__(self, message: OutboxMessage | None = None, /) -> None: ...

Hook = Callable[[int], Awaitable[None]]
TRANSPORT_RETRY_DELAY_S: Final = 0.2
UNREADABLE: Final = "stored alert is unreadable"


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
    ) -> None:
        self._storage = storage
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
        storage.key_sets.on_change(self.forget_user)
        storage.options.on_change(self.forget_user)
        # SPEC section 15: risk limits, confirm mode, after-hours reservations
        self._limits = LimitGuard(storage, kis, self._db)
        self._confirm = ConfirmGate(storage, self._db)
        self._after_hours = AfterHours(storage, kis, self._db, self._limits.release)
        # (user, symbol) whose earlier order could not be reconciled: nothing more is sent
        self._blocked: dict[tuple[int, str], int] = {}

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
        user, key_sets, options = await asyncio.gather(
            self._db(self._storage.users.get(user_id)),
            self._db(self._storage.key_sets.for_user(user_id)),
            self._db(self._storage.options.get(user_id)),
        )
        if user is None:
            return None
        env = user.active_environment
        keys = next((k for k in key_sets if k.environment is env), None)
        return UserState(user, keys, options)

    # -- entry points ---------------------------------------------------------------------

    def submit(self, accepted: AcceptedAlert) -> None:
        """An alert just stored by the intake (in memory: no database polling)."""
        self._workers.submit(
            (accepted.user_id, accepted.alert.symbol),
            self._process_later(accepted.alert_id, accepted.user_id, accepted.alert),
        )

    def _process_later(self, alert_id: int, user_id: int, alert: Alert) -> Job:
        return lambda: self._process(alert_id, user_id, alert)

    def run_stored(self, alert_id: int) -> None:
        """Act on a stored alert now: one confirmed in the chat, or a `/close` sell. It
        is read from the database, so any instance can be woken for it."""
        self._workers.submit((-alert_id, ""), lambda: self._submit_stored(alert_id))

    async def _submit_stored(self, alert_id: int) -> None:
        record = await self._db(self._storage.alerts.get(alert_id))
        if record is None or record.status not in (AlertStatus.ACCEPTED,
                                                    AlertStatus.PROCESSING):
            return  # acted on already, or still waiting for the user
        alert = _alert_of(record)
        if alert is None:
            await self._db(self._storage.alerts.mark_failed(alert_id, UNREADABLE))
            return
        self._workers.submit(
            (record.user_id, alert.symbol), lambda: self._process_if_open(alert_id, record)
        )

    async def _process_if_open(self, alert_id: int, record: AlertRecord) -> None:
        # Several wake-ups for one alert queue behind each other: only the first acts.
        fresh = await self._db(self._storage.alerts.get(alert_id))
        alert = _alert_of(fresh) if fresh is not None else None
        if alert is not None:
            await self._process(alert_id, record.user_id, alert)

    def _reconcile_later(self, order: OrderRecord) -> Job:
        return lambda: self._reconcile_job(order)

    async def resume(self, *, gate: Job | None = None) -> ResumeReport:
        """At start, before alerts arrive: reconcile orders of unknown outcome, then
        queue accepted-but-unprocessed alerts. Each (user, symbol) reconciles first.

        The work is queued at once (so later alerts of the same stock wait behind it),
        but each job first awaits `gate` — e.g. the fill-notice watchers settling, so
        the guard does not refuse resumed alerts only because they are still connecting.
        """
        open_alerts = await self._db(self._storage.alerts.unprocessed())
        unresolved: dict[int, OrderRecord] = {
            order.id: order for order in await self._db(self._storage.orders.unknown_orders())
        }
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
                await self._db(self._storage.alerts.mark_failed(record.id, UNREADABLE))
                continue
            to_process.append((record, alert))
        for order in sorted(unresolved.values(), key=lambda o: o.id):
            self._workers.submit(
                (order.user_id, order.symbol), _gated(gate, self._reconcile_later(order))
            )
        for record, alert in to_process:
            job = _gated(gate, self._process_later(record.id, record.user_id, alert))
            self._workers.submit((record.user_id, alert.symbol), job)
        log.info(
            "resume: %d alerts queued, %d orders to reconcile, %d closed",
            len(to_process),
            len(unresolved),
            finished,
        )
        return ResumeReport(alerts=len(to_process), reconciling=len(unresolved))

    async def wait_idle(self) -> None:
        await self._workers.wait_idle()

    async def close(self) -> None:
        """Stop: running jobs are cancelled (an order in flight is recorded as unknown)."""
        await self._workers.close()

    # -- one alert ------------------------------------------------------------------------

    async def _process(self, alert_id: int, user_id: int, alert: Alert) -> None:
        try:
            await self._process_alert(alert_id, user_id, alert)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("alert %d failed in the pipeline", alert_id)
            with contextlib.suppress(Exception):
                await self._db(
                    self._storage.alerts.mark_failed(
                        alert_id, f"internal error ({type(exc).__name__})"
                    )
                )

    async def _process_alert(self, alert_id: int, user_id: int, alert: Alert) -> None:
        state = await self._inputs.get(user_id)
        if state is None:
            await self._db(self._storage.alerts.mark_failed(alert_id, "the user no longer exists"))
            return
        user, keys, options = state.user, state.keys, state.options
        env = user.active_environment
        market = self._markets.of(alert.instrument)
        from_chat = alert.origin == ORIGIN_CLOSE
        base = Notice(
            kind=NoticeKind.ORDER_REFUSED,
            env=env.value,
            symbol=alert.symbol,
            side=alert.action.value if alert.action else "",
            quantity=alert.sizing.shares if isinstance(alert.sizing, Quantity) else 0,
            order_type=alert.order_type.value,
            price=alert.price,
            comment=alert.comment or "",
            market=market.code,
            exchange=alert.exchange if market.code != "KRX" else "",
            currency=market.currency.code,
        )
        confirming = options.confirm and not from_chat
        confirmed = False
        if confirming:
            asked = await self._confirm.decision(alert_id)
            if asked is not None and asked.status is not ConfirmationStatus.CONFIRMED:
                return  # still waiting for the user, or skipped / expired
            confirmed = asked is not None
        now = self._clock()
        refusal = check_guards(
            user=replace(user, paused=False) if from_chat else user,  # /close works paused
            keys=keys,
            readiness=self._readiness,
            alert=alert,
            now=now,
            market=self._market,
            hours=market.hours,
            check_lag=not confirmed,
        )
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
        creds, account = credentials(keys)
        ctx = _Context(user_id, user.chat_id, env, creds, account)
        if confirming and not confirmed:
            self._woken(
                await self._confirm.ask(
                    alert_id=alert_id, user_id=user_id, chat_id=user.chat_id, env=env.value,
                    seconds=options.confirm_seconds or 0, alert=alert,
                )
            )
            return
        blocked = await self._still_blocked(user_id, alert.symbol, ctx)
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
                    account=account, market=market, alert=alert, sized=sized,
                    subject=subject_from_alert(alert.to_json(), env.value), now=now,
                )
            )
            return
        await self._place(alert_id, alert, market, ctx, sized, name="")

    async def _size(
        self, alert_id: int, alert: Alert, market: Market, ctx: _Context, base: Notice
    ) -> SizedOrder | Refusal | None:
        """Fresh price/holding from KIS, then the size; None when KIS could not say."""
        wanted = needs(alert, market)
        price: Decimal | None = None
        tick: Decimal | None = None
        holding: int | None = None
        held: Held | None = None
        try:
            if wanted.price:
                quote = await market.quote(self._kis, ctx.creds, alert.instrument)
                if quote.price <= 0:
                    # A success without a price (e.g. an unknown code): sizing cannot divide
                    # by it, so it fails like any other inquiry, with a notice.
                    raise KisServerError(
                        rt_cd="0", msg_cd="", msg1=f"no current price for {alert.symbol}",
                        tr_id=None, http_status=200,
                    )
                price, tick = quote.price, quote.tick
            if wanted.holding:
                held = await market.held(self._kis, ctx.creds, ctx.account, alert.instrument)
                if held is None:
                    holding = 0
                elif isinstance(alert.sizing, Position):
                    holding = held.quantity  # the position is what is held
                else:
                    holding = held.sellable  # what can be sold now (ord_psbl_qty)
        except KisError as exc:
            reason = _kis_reason(exc)
            log.warning("alert %d: KIS inquiry failed: %s", alert_id, type(exc).__name__)
            queued = await self._db(
                self._storage.alerts.finish(
                    alert_id,
                    AlertStatus.FAILED,
                    f"KIS inquiry failed: {reason}",
                    notice=_entry(
                        ctx.chat_id,
                        replace(
                            base,
                            kind=NoticeKind.ORDER_FAILED,
                            reason=reason,
                            reason_key="inquiry_failed",
                            reason_params={"detail": reason},
                        ),
                        f"alert_failed:{alert_id}",
                    ),
                    user_id=ctx.user_id,
                )
            )
            self._metrics.orders.labels("failed").inc()
            self._woken(queued)
            return None
        result = size_order(alert, market, current_price=price, holding=holding, tick=tick)
        if isinstance(result, SizingRefusal):
            return sizing_refusal(alert, result)
        if (
            isinstance(alert.sizing, Position)
            and held is not None
            and result.side is Side.SELL
            and result.quantity > held.sellable
        ):
            return Refusal(
                "insufficient_holding",
                f"cannot sell {result.quantity:,} of {alert.symbol} to reach the target "
                f"position: {held.sellable:,} can be sold now",
                "insufficient_holding",
                {"quantity": f"{result.quantity:,}", "sellable": f"{held.sellable:,}"},
            )
        cost = held.avg_price if held is not None and result.side is Side.SELL else None
        return replace(result, last=price, cost=cost)

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
        if self._hooks.before_order is not None:
            await self._hooks.before_order(alert_id)
        try:
            order = await self._db(
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
                )
            )
        except OrderAlreadyExists:
            # This alert's order exists already (a resumed alert): never a second one.
            log.warning("alert %d already has an order; not sending again", alert_id)
            return
        notice = Notice(
            kind=NoticeKind.ORDER_ACCEPTED,
            env=ctx.env.value,
            symbol=alert.symbol,
            side=sized.side.value,
            quantity=sized.quantity,
            order_type=order.order_type,
            price=order.price,
            comment=alert.comment or "",
            market=market.code,
            exchange=alert.exchange if market.code != "KRX" else "",
            currency=market.currency.code,
            marketable=request.marketable,
        )
        try:
            if self._hooks.before_send is not None:
                await self._hooks.before_send(alert_id)
            ack = await self._send(order, market, request, ctx, notice)
            if ack is None:
                return
            if self._hooks.after_answer is not None:
                await self._hooks.after_answer(alert_id)
            await self._accepted(order, ack.order_no, ack.branch, ctx, notice)
        except Exception:
            # The outcome may be unrecorded (the row still `pending`, e.g. a database error
            # after KIS accepted): nothing more for this stock until it is reconciled.
            self._blocked[(ctx.user_id, alert.symbol)] = order.id
            raise

    async def _send(
        self,
        order: OrderRecord,
        market: Market,
        request: PlannedOrder,
        ctx: _Context,
        notice: Notice,
    ) -> OrderAck | None:
        """Send once. Returns the ack, or None when the outcome was recorded otherwise.

        Nothing is written between the pending row and the request: a `pending` row is
        treated exactly like `sent` when reconciling, and the answer's transaction
        records when it was sent."""
        try:
            ack = await self._send_retrying_unsent(ctx, market, request)
        except asyncio.CancelledError:
            # Stopped while the request may have been on the wire: unknown, reconcile later.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(self._unknown_after_cancel(order))
            raise
        except OrderOutcomeUnknown as exc:
            await self._unknown(order, ctx, notice, str(exc))
            return None
        except KisServerError as exc:
            # OPSQ… or a 5xx: a gateway fault that does not prove the order was refused.
            await self._unknown(order, ctx, notice, _kis_reason(exc))
            return None
        except KisTransportError as exc:
            reason = f"could not reach KIS: {exc}"
            await self._failed(
                order,
                ctx,
                notice,
                reason,
                None,
                rejected=False,
                reason_key="kis_unreachable",
                reason_params={"detail": str(exc)},
            )
            return None
        except KisApiError as exc:
            await self._failed(
                order, ctx, notice, _kis_reason(exc), exc.msg_cd or None, rejected=True
            )
            return None
        return ack

    async def _send_retrying_unsent(
        self, ctx: _Context, market: Market, request: PlannedOrder
    ) -> OrderAck:
        try:
            return await market.place(self._kis, ctx.creds, ctx.account, request)
        except KisTransportError:
            # Nothing left (connect failed): one more try is safe. Never for unknown.
            await asyncio.sleep(TRANSPORT_RETRY_DELAY_S)
            return await market.place(self._kis, ctx.creds, ctx.account, request)

    async def _unknown_after_cancel(self, order: OrderRecord) -> None:
        await self._db(
            self._storage.orders.record_outcome(
                order, OrderStatus.UNKNOWN, "stopped while the order was sent"
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
    ) -> None:
        _, queued = await self._db(
            self._storage.orders.record_accepted(
                order,
                order_no,
                branch,
                notice=_entry(
                    ctx.chat_id,
                    replace(notice, order_no=order_no),
                    notice_dedupe_key(
                        NoticeKind.ORDER_ACCEPTED, ctx.user_id, ctx.env.value, order_no
                    ),
                ),
            )
        )
        self._metrics.orders.labels("accepted").inc()
        self._woken(queued)

    async def _failed(
        self,
        order: OrderRecord,
        ctx: _Context,
        notice: Notice,
        reason: str,
        msg_cd: str | None,
        *,
        rejected: bool,
        reason_key: str = "",
        reason_params: Mapping[str, str] | None = None,
    ) -> None:
        """`reason_key` names the bot's localized text; without one the chat shows `reason`
        as is (KIS's own msg1 for a rejection)."""
        _, queued = await self._db(
            self._storage.orders.record_outcome(
                order,
                OrderStatus.REJECTED if rejected else OrderStatus.FAILED,
                reason,
                msg_cd,
                alert_status=AlertStatus.FAILED,
                alert_reason=f"order failed: {reason}",
                notice=_entry(
                    ctx.chat_id,
                    replace(
                        notice,
                        kind=NoticeKind.ORDER_FAILED,
                        reason=reason,
                        reason_key=reason_key,
                        reason_params=dict(reason_params or {}),
                    ),
                    f"order_failed:{order.id}",
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
                "no answer from KIS",
                notice=_entry(
                    ctx.chat_id,
                    replace(
                        notice,
                        kind=NoticeKind.ORDER_FAILED,
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
                refusal.reason,
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

    async def _still_blocked(self, user_id: int, symbol: str, ctx: _Context) -> int | None:
        """The earlier order that still blocks this stock, after one more attempt to
        settle it: a block would otherwise last until the next restart."""
        key = (user_id, symbol)
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
        try:
            user = await self._db(self._storage.users.get(order.user_id))
            keys = await self._db(self._storage.key_sets.get(order.user_id, order.environment))
            if user is None or keys is None:
                log.warning("order %d: no user/keys left to reconcile with", order.id)
                self._blocked[(order.user_id, order.symbol)] = order.id
                return
            creds, account = credentials(keys)
            ctx = _Context(user.id, user.chat_id, order.environment, creds, account)
            await self._reconcile(order, ctx)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconciling order %d failed", order.id)
            self._blocked[(order.user_id, order.symbol)] = order.id

    async def _reconcile(self, order: OrderRecord, ctx: _Context) -> None:
        async def taken(order_no: str) -> bool:
            other = await self._db(
                self._storage.orders.by_order_no(ctx.user_id, order_no, ctx.env)
            )
            # KIS numbers orders per day: the same number on another day is another order.
            return (
                other is not None and other.id != order.id and kis_day(other) == kis_day(order)
            )

        verdict = await self._reconciler.check(order, ctx.creds, ctx.account, taken)
        key = (order.user_id, order.symbol)
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
            if ended is None:
                await self._accepted(order, found.order_no, found.branch or None, ctx, notice)
            else:  # it reached KIS, which then refused or cancelled all of it
                await self._failed(
                    order, ctx, notice,
                    f"{ended} at KIS as order {found.order_no} (checked daily executions)",
                    None, rejected=True,
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
                order, ctx, notice, NOT_PLACED, None, rejected=False, reason_key="not_placed"
            )
        else:
            # KIS could not be asked: leave it unknown and send nothing more for it.
            self._blocked[key] = order.id
            await self._db(
                self._storage.orders.mark_unknown(
                    order.id, "could not check KIS's daily executions; still unknown"
                )
            )
            log.warning("order %d: could not reconcile (%s)", order.id, verdict.error)

    async def _finish_alert_for(self, order: OrderRecord) -> None:
        if order.status in (OrderStatus.REJECTED, OrderStatus.FAILED):
            await self._db(
                self._storage.alerts.mark_failed(
                    order.alert_id, f"order failed: {order.reason or order.status.value}"
                )
            )
        else:
            await self._db(self._storage.alerts.mark_done(order.alert_id))

    # -- notices --------------------------------------------------------------------------

    def _woken(self, queued: OutboxMessage | None) -> None:
        """Hand the queued notice to the notifier."""
        if queued is None or self._wake is None:
            return
        try:
            self._wake(queued)
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


def _kis_reason(exc: KisError) -> str:
    if isinstance(exc, KisApiError):
        text = exc.msg1 or "(no message)"
        return f"[{exc.msg_cd}] {text}" if exc.msg_cd else text
    return str(exc)
