"""`/balance [NAME]` and `/pnl [NAME]`: the account fresh from KIS, both markets, every
page. Without a name a user with several accounts sees each of them, named."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.account_args import account_named
from bot.formatting import env_label, kst_time
from bot.pnl import kis_reason, market_day
from bot.portfolio_views import MarketBalance, balance_lines, chunks, pnl_lines
from bot.texts import Lang, t
from kis.client import KisClient
from kis.errors import KisError
from kis.markets import Markets
from storage.facade import Storage
from storage.records import AccountRecord, KeySetRecord, UserRecord


async def keys_or_say(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    account: AccountRecord | None = None,
) -> KeySetRecord | None:
    """The keys of the account's (default: the default account's) active environment,
    or None after telling the user there are none."""
    if account is None:
        account = await storage.accounts.default(user.id)
    if account is None:  # pragma: no cover - every user has a default account
        return None
    env = account.active_environment
    keys = await storage.key_sets.get(user.id, env, account_id=account.id)
    if keys is None or not keys.validated:
        await message.answer(t(lang, "balance.no_keys", env=env_label(lang, env.value)))
        return None
    return keys


async def accounts_asked(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    command: CommandObject | None,
) -> list[tuple[AccountRecord, str]]:
    """The accounts a command is about, each with the header it is shown under: the one
    named, else the default — or, for a user with several, every account, named."""
    name = ((command.args or "") if command is not None else "").strip()
    if name:
        found = await account_named(message, user, lang, storage, name)
        return [] if found is None else [(found, t(lang, "balance.account", name=found.name))]
    accounts = await storage.accounts.for_user(user.id)
    if len(accounts) == 1:
        return [(accounts[0], "")]
    return [(a, t(lang, "balance.account", name=a.name)) for a in accounts]


async def balance(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, kis: KisClient,
    markets: Markets, command: CommandObject | None = None,
) -> None:
    await _each(message, user, lang, storage, command,
                lambda account: _balance(message, user, lang, storage, kis, markets, account))


async def _each(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    command: CommandObject | None, show: Callable[[AccountRecord], Awaitable[None]],
) -> None:
    """`show` each account the command is about, under its header when it has one."""
    for account, header in await accounts_asked(message, user, lang, storage, command):
        if header:
            await message.answer(header)
        await show(account)


async def _balance(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, kis: KisClient,
    markets: Markets, holder: AccountRecord,
) -> None:
    keys = await keys_or_say(message, user, lang, storage, holder)
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
    markets: Markets, command: CommandObject | None = None,
) -> None:
    await _each(message, user, lang, storage, command,
                lambda account: _pnl(message, user, lang, storage, kis, markets, account))


async def _pnl(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, kis: KisClient,
    markets: Markets, holder: AccountRecord,
) -> None:
    keys = await keys_or_say(message, user, lang, storage, holder)
    if keys is None:
        return
    creds, account = keys.kis_access()
    now = datetime.now(UTC)
    days = [
        await market_day(kis=kis, storage=storage, market=market, user_id=user.id,
                         creds=creds, account=account, day=market.hours.trading_day(now),
                         account_id=holder.id)
        for market in markets
    ]
    for text in chunks(pnl_lines(lang, keys.environment.value, days)):
        await message.answer(text)


def build_router() -> Router:
    router = Router(name="portfolio")
    router.message.register(balance, Command("balance"))
    router.message.register(pnl, Command("pnl"))
    return router
