"""`/status` (with a Re-check button) and `/log` — the asking user's own data only."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.checks import RecheckCooldown
from bot.formatting import env_label
from bot.keyboards import AccountRecheck, Recheck, recheck_accounts_keyboard, recheck_keyboard
from bot.routers.keys import run_checks
from bot.texts import Lang, t
from bot.views import (
    AccountStatus,
    account_names,
    accounts_status_message,
    kst_midnight,
    log_message,
    status_message,
)
from bot.watchers import WatcherSupervisor
from kis.env import Environment
from kis.keycheck import FillProbe, KeyChecker, live_or_probe
from kis.models import Account, AppCredentials
from kis.ws import ConnectionState
from storage.facade import Storage
from storage.records import UserRecord


async def status(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, public_url: str,
) -> None:
    accounts = await storage.accounts.for_user(user.id)
    key_sets = await storage.key_sets.for_user(user.id)
    today = await storage.orders.since(user.id, kst_midnight(datetime.now(UTC)))
    shown = [
        AccountStatus(
            account,
            next((k for k in key_sets if k.account_id == account.id
                  and k.environment is account.active_environment), None),
            watchers.connection_state(account.id),
        )
        for account in accounts
    ]
    if len(shown) == 1:
        (only,) = shown
        env = only.account.active_environment
        await message.answer(
            status_message(lang, user, only.keys, only.fill_state, len(today), public_url),
            reply_markup=None if only.keys is None else recheck_keyboard(lang, env.value),
        )
        return
    with_keys = [(a.account.id, a.account.name, a.account.active_environment.value)
                 for a in shown if a.keys is not None]
    await message.answer(
        accounts_status_message(lang, user, shown, len(today), public_url),
        reply_markup=recheck_accounts_keyboard(lang, with_keys) if with_keys else None,
    )


async def recheck(
    query: CallbackQuery,
    callback_data: Recheck | AccountRecheck,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    keychecker: KeyChecker,
    watchers: WatcherSupervisor,
    *,
    cooldown: RecheckCooldown,
) -> None:
    """The three checks again with the stored keys: nothing but the results changes, so
    no 2FA — but paced per user (KIS issues a token once a minute)."""
    await query.answer()
    message = query.message
    if callback_data.env not in ("paper", "real") or not isinstance(message, Message):
        return
    env = Environment(callback_data.env)
    account_id = getattr(callback_data, "account", 0)
    holder = (
        await storage.accounts.get(account_id) if account_id
        else await storage.accounts.default(user.id)
    )
    keys = None
    if holder is not None and holder.user_id == user.id:
        keys = await storage.key_sets.get(user.id, env, account_id=holder.id)
    if holder is None or keys is None:
        await message.answer(t(lang, "recheck.no_keys", env=env_label(lang, env.value)))
        return
    wait = cooldown.try_start(user.id)
    if wait:
        await message.answer(t(lang, "recheck.wait", seconds=wait))
        return
    creds = AppCredentials(
        app_key=keys.app_key.reveal(), app_secret=keys.app_secret, env=env
    )
    await run_checks(
        message, user=user, lang=lang, storage=storage, keychecker=keychecker,
        watchers=watchers, creds=creds, account=Account(keys.cano, keys.product_code),
        hts_id=keys.hts_id, holder=holder,
        probe=_live_or_probe(user, holder.id, watchers),
    )


def _live_or_probe(user: UserRecord, account_id: int, watchers: WatcherSupervisor) -> FillProbe:
    def live(env: Environment) -> ConnectionState | None:
        ready, _ = watchers.state_for(account_id, env)
        return watchers.connection_state(account_id) if ready else None

    async def fresh(creds: AppCredentials, hts_id: str, timeout: float) -> ConnectionState:  # noqa: ASYNC109
        return await watchers.probe(account_id, user.chat_id, creds, hts_id, timeout)

    return live_or_probe(live, fresh)


async def log(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    names = account_names(await storage.accounts.for_user(user.id))
    await message.answer(log_message(lang, await storage.alerts.recent(user.id, 20), names))


def build_router(cooldown: RecheckCooldown | None = None) -> Router:
    router = Router(name="status")
    router.message.register(status, Command("status"))
    router.message.register(log, Command("log"))  # /orders: bot.routers.open_orders
    # One cooldown per router (per dispatcher): no state at module level.
    handler = functools.partial(recheck, cooldown=cooldown or RecheckCooldown())
    router.callback_query.register(handler, Recheck.filter())
    router.callback_query.register(handler, AccountRecheck.filter())
    return router
