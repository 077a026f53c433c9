"""`/orders` with its Cancel buttons (open orders, reservation orders) and `/close`.

Each cancel is claimed in the database before its request leaves, so a second press
(or a second device) sends nothing; `/close` stores its sells under the press's key,
so a second press of the same button places nothing more.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.account_args import account_named
from bot.callbacks import replier, settle
from bot.cards import subject_text
from bot.formatting import env_and_account, env_label, money, side_label, stock, won
from bot.pnl import kis_reason
from bot.portfolio_keyboards import (
    CancelOrder,
    CancelReservation,
    CloseChoice,
    cancel_keyboard,
    close_keyboard,
)
from bot.routers.portfolio import keys_or_say
from bot.texts import Lang, t
from bot.views import account_names, orders_message
from kis.client import KisClient
from kis.errors import KisApiError, KisError, KisServerError, OrderOutcomeUnknown
from kis.markets import Instrument, Markets, SymbolError
from storage.facade import Storage
from storage.portfolio_notices import subject_from_reservation
from storage.portfolio_records import CancelStatus, ReservationStatus, ReservedOrderRecord
from storage.records import OrderRecord, OrderStatus, UserRecord

CloseOrders = Callable[[int, Instrument, str, int | None], Awaitable[int | None]]
"""Store a `/close` sell of an instrument for a user under a key, in an account (None:
the default), and wake the pipeline; the alert id, or None when the key was used
before."""

OPEN_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)
RESERVATION_LOOKAHEAD = timedelta(days=10)


def is_open(order: OrderRecord, markets: Markets, now: datetime) -> bool:
    """Accepted today (KIS orders last one market day) with something left to fill."""
    if order.status not in OPEN_STATUSES or not order.order_no:
        return False
    if order.quantity - order.filled_qty <= 0:
        return False
    hours = markets.get(order.market).hours
    return hours.trading_day(order.created_at) == hours.trading_day(now)


async def orders(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, markets: Markets
) -> None:
    recent = await storage.orders.recent(user.id, 10)
    cancels = await storage.cancels.statuses([o.id for o in recent])
    now = datetime.now(UTC)
    marks: dict[int, str] = {}
    cancellable: list[tuple[int, str]] = []
    for order in recent:
        status = cancels.get(order.id)
        if status is CancelStatus.DONE:
            marks[order.id] = t(lang, "orders.cancelled_mark")
        elif is_open(order, markets, now):
            partial = order.status is OrderStatus.PARTIALLY_FILLED
            marks[order.id] = t(lang, "orders.partial_mark" if partial else "orders.open_mark")
            if status not in (CancelStatus.REQUESTED, CancelStatus.UNKNOWN):
                cancellable.append((order.id, order.symbol))
    names = account_names(await storage.accounts.for_user(user.id))
    lines = [orders_message(lang, recent, marks, names)]
    if cancellable:
        lines.append(t(lang, "orders.open_hint"))
    reserved = await storage.reserved.open_for_user(user.id)
    if reserved:
        lines.append("")
        lines.append(t(lang, "orders.reservations"))
        lines += [_reservation_line(lang, r) for r in reserved]
    keyboard = cancel_keyboard(
        lang, cancellable,
        [(r.id, r.symbol) for r in reserved if r.status is ReservationStatus.RESERVED],
    )
    await message.answer("\n".join(lines), reply_markup=keyboard)


def _reservation_line(lang: Lang, record: ReservedOrderRecord) -> str:
    price = (t(lang, "notice.price_market") if record.price is None
             else t(lang, "notice.price_limit", price=money(lang, record.price)))
    return t(
        lang, "orders.reservation", date=record.entry_date, stock=stock(record.symbol,
                                                                        record.name or ""),
        side=side_label(lang, record.side), quantity=won(record.quantity), price=price,
        status=t(lang, f"resv_status.{record.status.value}"),
    )


async def cancel_order(
    query: CallbackQuery, callback_data: CancelOrder, user: UserRecord, lang: Lang,
    storage: Storage, kis: KisClient, markets: Markets,
) -> None:
    await query.answer()
    say = replier(query)
    order_id = callback_data.order_id
    order = await storage.orders.get(order_id)
    if order is None or order.user_id != user.id or not is_open(order, markets,
                                                                 datetime.now(UTC)):
        await say(t(lang, "cancel.not_open", id=order_id))
        return
    if not await storage.cancels.claim(order.id, user.id):
        await say(t(lang, "cancel.already", id=order_id))
        return
    keys = None if order.account_id is None else await storage.key_sets.get(
        user.id, order.environment, account_id=order.account_id
    )
    if keys is None:
        await storage.cancels.finish(order.id, CancelStatus.REFUSED, "no keys")
        await say(t(lang, "cancel.failed", id=order_id, reason="/keys"))
        return
    creds, account = keys.kis_access()
    remaining = order.quantity - order.filled_qty
    try:
        await markets.get(order.market).cancel(
            kis, creds, account, Instrument(order.market, order.symbol, order.exchange),
            order_no=order.order_no or "", branch=order.branch or "", quantity=remaining,
        )
    except (OrderOutcomeUnknown, KisServerError) as exc:
        await storage.cancels.finish(order.id, CancelStatus.UNKNOWN, kis_reason(exc))
        await say(t(lang, "cancel.unknown", id=order_id))
        return
    except KisApiError as exc:
        await storage.cancels.finish(order.id, CancelStatus.REFUSED, kis_reason(exc))
        await say(t(lang, "cancel.refused", id=order_id, reason=kis_reason(exc)))
        return
    except KisError as exc:  # nothing reached KIS: a new press may try again
        await storage.cancels.finish(order.id, CancelStatus.REFUSED, kis_reason(exc))
        await say(t(lang, "cancel.failed", id=order_id, reason=kis_reason(exc)))
        return
    await storage.cancels.finish(order.id, CancelStatus.DONE)
    await storage.audit.record(user.id, "order.cancel", {"order_id": order.id})
    await say(t(lang, "cancel.done", id=order_id,
                stock=stock(order.symbol, order.name or "", order.exchange),
                remaining=won(remaining)))


async def cancel_reservation(
    query: CallbackQuery, callback_data: CancelReservation, user: UserRecord, lang: Lang,
    storage: Storage, kis: KisClient, markets: Markets,
) -> None:
    await query.answer()
    say = replier(query)
    record = await storage.reserved.claim_cancel(callback_data.reservation_id, user.id)
    if record is None or record.seq is None:
        await say(t(lang, "cancel.not_open", id=callback_data.reservation_id))
        return
    keys = None if record.account_id is None else await storage.key_sets.get(
        user.id, record.environment, account_id=record.account_id
    )
    if keys is None:
        await storage.reserved.finish_cancel(record.id, False, "no keys")
        await say(t(lang, "cancel.failed", id=record.id, reason="/keys"))
        return
    creds, account = keys.kis_access()
    market = markets.get("KRX")
    entered = record.entry_day
    try:
        listed = await market.reservations(kis, creds, account, entered,
                                           entered + RESERVATION_LOOKAHEAD)
        item = next((r for r in listed if r.seq == record.seq), None)
        if item is None or item.order_no or item.cancelled or item.result:
            await storage.reserved.finish_cancel(record.id, False, "no longer waiting")
            await say(t(lang, "cancel.not_open", id=record.id))
            return
        await market.cancel_reservation(kis, creds, account, seq=record.seq,
                                        order_date=item.order_date)
    except KisError as exc:
        await storage.reserved.finish_cancel(record.id, False, kis_reason(exc))
        await say(t(lang, "cancel.refused", id=record.id, reason=kis_reason(exc)))
        return
    await storage.reserved.finish_cancel(record.id, True, None)
    await storage.limits.release(record.alert_id)  # never placed: its share of the day back
    await storage.audit.record(user.id, "reservation.cancel", {"reservation_id": record.id})
    subject = subject_text(lang, subject_from_reservation(record))
    await say(t(lang, "card.resv_cancelled", env=env_label(lang, record.environment.value),
                subject=subject))


async def close(
    message: Message, command: CommandObject, user: UserRecord, lang: Lang, storage: Storage,
    kis: KisClient, markets: Markets,
) -> None:
    target, _, name = (command.args or "").strip().partition(" ")
    if not target:
        await message.answer(t(lang, "close.usage"))
        return
    holder = await account_named(message, user, lang, storage, name.strip())
    if holder is None:
        return
    keys = await keys_or_say(message, user, lang, storage, holder)
    if keys is None:
        return
    creds, account = keys.kis_access()
    lines: list[str] = []
    try:
        if target.lower() == "all":
            exchange = symbol = "*"
            for market in markets:
                book = await market.portfolio(kis, creds, account)
                lines += [
                    t(lang, "close.line", stock=stock(h.symbol, h.name, h.exchange),
                      quantity=won(h.quantity), sellable=won(h.sellable))
                    for h in book.holdings if h.quantity > 0
                ]
            if not lines:
                await message.answer(t(lang, "close.nothing"))
                return
        else:
            try:
                inst = markets.parse(target)
            except SymbolError as exc:
                await message.answer(t(lang, "close.bad_symbol", detail=exc.message[:200]))
                return
            held = await markets.of(inst).held(kis, creds, account, inst)
            if held is None or held.quantity <= 0:
                await message.answer(t(lang, "close.not_held", symbol=inst.symbol))
                return
            exchange, symbol = inst.exchange, inst.symbol
            lines.append(t(lang, "close.line", stock=stock(symbol, "", exchange),
                           quantity=won(held.quantity), sellable=won(held.sellable)))
    except KisError as exc:
        await message.answer(t(lang, "balance.failed", reason=kis_reason(exc)))
        return
    several = len(await storage.accounts.for_user(user.id)) > 1
    env = env_and_account(lang, keys.environment.value, holder.name if several else "")
    await message.answer(
        t(lang, "close.ask", env=env, lines="\n".join(lines)),
        reply_markup=close_keyboard(lang, secrets.token_hex(6), exchange, symbol, holder.id),
    )


async def close_pressed(
    query: CallbackQuery, callback_data: CloseChoice, user: UserRecord, lang: Lang,
    storage: Storage, kis: KisClient, markets: Markets, close_orders: CloseOrders,
) -> None:
    await query.answer()
    if not callback_data.sell:
        await settle(query, t(lang, "close.dropped"))
        return
    holder = (
        await storage.accounts.get(callback_data.account) if callback_data.account
        else await storage.accounts.default(user.id)
    )
    keys = None
    if holder is not None and holder.user_id == user.id:
        keys = await storage.key_sets.get(user.id, holder.active_environment,
                                          account_id=holder.id)
    if holder is None or keys is None:
        env = user.active_environment if holder is None else holder.active_environment
        await replier(query)(t(lang, "balance.no_keys", env=env_label(lang, env.value)))
        return
    creds, account = keys.kis_access()
    try:
        if callback_data.symbol == "*":
            instruments = []
            for market in markets:  # what is held now: the sells are of this moment
                book = await market.portfolio(kis, creds, account)
                instruments += [markets.parse(f"{h.exchange or market.code}:{h.symbol}")
                                for h in book.holdings if h.sellable > 0]
        else:
            instruments = [markets.parse(f"{callback_data.exchange}:{callback_data.symbol}")]
    except (KisError, SymbolError) as exc:
        reason = kis_reason(exc) if isinstance(exc, KisError) else exc.message
        await replier(query)(t(lang, "balance.failed", reason=reason))
        return
    sent = 0
    for inst in instruments:
        key = f"close:{callback_data.nonce}:{inst.exchange}:{inst.symbol}"
        if await close_orders(user.id, inst, key, holder.id) is not None:
            sent += 1
    if sent:
        await storage.audit.record(user.id, "close", {"sells": sent})
        await settle(query, t(lang, "close.sending", count=sent))
    else:
        await replier(query)(t(lang, "close.already"))


def build_router() -> Router:
    router = Router(name="open_orders")
    router.message.register(orders, Command("orders"))
    router.message.register(close, Command("close"))
    router.callback_query.register(cancel_order, CancelOrder.filter())
    router.callback_query.register(cancel_reservation, CancelReservation.filter())
    router.callback_query.register(close_pressed, CloseChoice.filter())
    return router

