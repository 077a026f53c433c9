"""`/status` (with a Re-check button) and `/log` — the asking user's own data only."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.checks import RecheckCooldown
from bot.formatting import env_label
from bot.keyboards import Recheck, recheck_keyboard
from bot.routers.keys import run_checks
from bot.texts import Lang, t
from bot.views import kst_midnight, log_message, status_message
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
    env = user.active_environment
    keys = await storage.key_sets.get(user.id, env)
    today = await storage.orders.since(user.id, kst_midnight(datetime.now(UTC)))
    await message.answer(
        status_message(lang, user, keys, watchers.connection_state(user.id), len(today),
                       public_url),
        reply_markup=None if keys is None else recheck_keyboard(lang, env.value),
    )


async def recheck(
    query: CallbackQuery,
    callback_data: Recheck,
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
    keys = await storage.key_sets.get(user.id, env)
    if keys is None:
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
        hts_id=keys.hts_id, probe=_live_or_probe(user, watchers),
    )


def _live_or_probe(user: UserRecord, watchers: WatcherSupervisor) -> FillProbe:
    def live(env: Environment) -> ConnectionState | None:
        ready, _ = watchers.state_for(user.id, env)
        return watchers.connection_state(user.id) if ready else None

    async def fresh(creds: AppCredentials, hts_id: str, timeout: float) -> ConnectionState:  # noqa: ASYNC109
        return await watchers.probe(user.id, user.chat_id, creds, hts_id, timeout)

    return live_or_probe(live, fresh)


async def log(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    await message.answer(log_message(lang, await storage.alerts.recent(user.id, 20)))


def build_router(cooldown: RecheckCooldown | None = None) -> Router:
    router = Router(name="status")
    router.message.register(status, Command("status"))
    router.message.register(log, Command("log"))  # /orders: bot.routers.open_orders
    # One cooldown per router (per dispatcher): no state at module level.
    router.callback_query.register(
        functools.partial(recheck, cooldown=cooldown or RecheckCooldown()), Recheck.filter()
    )
    return router
