"""`/balance` and `/pnl`: the account fresh from KIS, both markets, every page."""

from __future__ import annotations

from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.formatting import env_label, kst_time
from bot.pnl import kis_reason, market_day
from bot.portfolio_views import MarketBalance, balance_lines, chunks, pnl_lines
from bot.texts import Lang, t
from kis.client import KisClient
from kis.errors import KisError
from kis.markets import Markets
from storage.facade import Storage
from storage.records import KeySetRecord, UserRecord


async def keys_or_say(
    message: Message, user: UserRecord, lang: Lang, storage: Storage
) -> KeySetRecord | None:
    """The active environment's keys, or None after telling the user there are none."""
    env = user.active_environment
    keys = await storage.key_sets.get(user.id, env)
    if keys is None or not keys.validated:
        await message.answer(t(lang, "balance.no_keys", env=env_label(lang, env.value)))
        return None
    return keys


async def balance(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, kis: KisClient,
    markets: Markets,
) -> None:
    keys = await keys_or_say(message, user, lang, storage)
    if keys is None:
        return
    creds, account = keys.kis_access()
    parts: list[MarketBalance] = []
    for market in markets:
        try:
            parts.append(MarketBalance(market.code, await market.portfolio(kis, creds, account)))
        except KisError as exc:
            parts.append(MarketBalance(market.code, None, kis_reason(exc)))
    lines = balance_lines(lang, keys.environment.value, kst_time(datetime.now(UTC)), parts)
    for text in chunks(lines):
        await message.answer(text)


async def pnl(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, kis: KisClient,
    markets: Markets,
) -> None:
    keys = await keys_or_say(message, user, lang, storage)
    if keys is None:
        return
    creds, account = keys.kis_access()
    now = datetime.now(UTC)
    days = [
        await market_day(kis=kis, storage=storage, market=market, user_id=user.id,
                         creds=creds, account=account, day=market.hours.trading_day(now))
        for market in markets
    ]
    for text in chunks(pnl_lines(lang, keys.environment.value, days)):
        await message.answer(text)


def build_router() -> Router:
    router = Router(name="portfolio")
    router.message.register(balance, Command("balance"))
    router.message.register(pnl, Command("pnl"))
    return router
