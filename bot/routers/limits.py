"""`/limits`: show the risk limits and today's use; set, lower or remove one.

Lowering a limit (or setting one where there was none) takes effect at once; raising
or removing one loosens what a runaway strategy may do, so it needs the 2FA code (the
`confirm` router finishes it through `confirmed_limit`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.portfolio_views import chunks, limit_value, limits_lines
from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_LIMITS, send_code
from kis.markets import Markets
from storage.facade import Storage
from storage.options import LimitName
from storage.portfolio_records import LimitUse
from storage.records import UserRecord

MAX_LIMIT: Final = Decimal(10) ** 13
_CENT: Final = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class LimitChange:
    name: LimitName
    currency: str  # "KRW" | "USD"; "" for orders per day
    value: Decimal | None  # None: remove the cap


class LimitInputError(ValueError):
    """What is wrong with `/limits …`, as a text key and its parameters."""

    def __init__(self, key: str, **params: str) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def parse_change(args: list[str]) -> LimitChange:
    """`order 1000000`, `day 500 usd`, `orders 50`, `off order`, `off day usd`."""
    words = [w.strip().lower() for w in args if w.strip()]
    off = bool(words) and words[0] == "off"
    if off:
        words = words[1:]
    if not words:
        raise LimitInputError("limits.usage")
    try:
        name = LimitName(words[0])
    except ValueError:
        raise LimitInputError("limits.bad_name", name=words[0][:20]) from None
    rest = words[1:]
    value: Decimal | None = None
    if not off:
        if not rest:
            raise LimitInputError("limits.usage")
        raw, rest = rest[0], rest[1:]
        value = _value(raw)
    if len(rest) > 1:
        raise LimitInputError("limits.usage")
    currency = rest[0].upper() if rest else ("" if name is LimitName.ORDERS else "KRW")
    if name is LimitName.ORDERS:
        if currency:
            raise LimitInputError("limits.orders_no_currency")
    elif currency not in ("KRW", "USD"):
        raise LimitInputError("limits.bad_currency", currency=currency.lower()[:10])
    if value is not None:
        whole = name is LimitName.ORDERS or currency == "KRW"
        if (whole and value != value.to_integral_value()) or (
            not whole and value != value.quantize(_CENT)
        ):
            raise LimitInputError("limits.bad_value", value=_shown(value))
    return LimitChange(name, currency, value)


def _value(raw: str) -> Decimal:
    text = raw.replace(",", "").replace("_", "").removesuffix("원").removeprefix("$")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise LimitInputError("limits.bad_value", value=raw[:30]) from None
    if not value.is_finite() or value <= 0 or value > MAX_LIMIT:
        raise LimitInputError("limits.bad_value", value=raw[:30])
    return value


def _shown(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _name(lang: Lang, name: LimitName) -> str:
    return t(lang, f"limits.name_{name.value}")


async def show_limits(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, markets: Markets
) -> None:
    options = await storage.options.get(user.id)
    now = datetime.now(UTC)
    used: list[tuple[str, str, LimitUse]] = []
    for market in markets:
        day = market.hours.trading_day(now).isoformat()
        used.append((market.code, market.currency.code,
                     await storage.limits.usage(user.id, market.code, day)))
    for text in chunks(limits_lines(lang, options.limits, used)):
        await message.answer(text)


async def limits(
    message: Message, command: CommandObject, state: FSMContext, user: UserRecord, lang: Lang,
    storage: Storage, markets: Markets,
) -> None:
    args = (command.args or "").split()
    if not args:
        await show_limits(message, user, lang, storage, markets)
        return
    try:
        change = parse_change(args)
    except LimitInputError as exc:
        text = t(lang, exc.key, **exc.params)
        if exc.key != "limits.usage":
            text += "\n" + t(lang, "limits.usage")
        await message.answer(text)
        return
    current = (await storage.options.get(user.id)).limits
    currency = change.currency or "KRW"
    if current.get(change.name, currency) == change.value:
        await message.answer(t(lang, "limits.unchanged", name=_name(lang, change.name),
                               value=limit_value(lang, change.name, currency, change.value)))
        return
    if current.raises(change.name, currency, change.value):
        await state.clear()
        await state.set_state(Confirm.code)
        await state.update_data(
            purpose=PURPOSE_LIMITS, limit_name=change.name.value, limit_currency=currency,
            limit_value="" if change.value is None else str(change.value),
        )
        await send_code(message, storage, user, PURPOSE_LIMITS, lang)
        return
    await apply_change(message, user, lang, storage, change)


async def apply_change(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, change: LimitChange
) -> None:
    currency = change.currency or "KRW"
    await storage.options.set_limit(user.id, change.name, currency, change.value)
    await storage.audit.record(
        user.id, "limits.changed",
        {"name": change.name.value, "currency": currency,
         "value": None if change.value is None else str(change.value)},
    )
    name = _name(lang, change.name)
    if change.value is None:
        await message.answer(t(lang, "limits.off", name=name))
    else:
        shown = limit_value(lang, change.name, currency, change.value)
        await message.answer(t(lang, "limits.set", name=name, value=shown))


async def confirmed_limit(
    message: Message, data: Mapping[str, object], user: UserRecord, lang: Lang,
    storage: Storage,
) -> None:
    """The 2FA code was right: apply the raise kept in the conversation's data."""
    raw = str(data.get("limit_value", ""))
    name = LimitName(str(data.get("limit_name")))
    currency = "" if name is LimitName.ORDERS else str(data.get("limit_currency") or "KRW")
    change = LimitChange(name, currency, Decimal(raw) if raw else None)
    await apply_change(message, user, lang, storage, change)


def build_router() -> Router:
    router = Router(name="limits")
    router.message.register(limits, Command("limits"))
    return router
