"""Building the bot and its dispatcher (no I/O here; `bot.runner` starts things)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import BotCommand, BotCommandScopeDefault

from bot import dashboard
from bot.filters import OwnPrivateChat
from bot.fsm import DatabaseStorage
from bot.middlewares import InflightMiddleware, UserMiddleware
from bot.notifier import Notifier
from bot.routers import (
    accounts,
    approvals,
    common,
    confirm,
    delete,
    keys,
    language,
    limits,
    mode,
    onboarding,
    open_orders,
    options,
    pause,
    portfolio,
    status,
    test_alert,
    totp,
    webhook,
)
from bot.routers.approvals import RunAlert
from bot.routers.open_orders import CloseOrders
from bot.routers.test_alert import AlertTester
from bot.texts import LANGS, Lang, t
from bot.watchers import WatcherSupervisor
from kis.keycheck import KeyChecker
from kis.markets import Markets, default_markets
from storage.facade import Storage

log = logging.getLogger(__name__)

COMMANDS = (
    "start", "help", "keys", "accounts", "mode", "paper", "real", "webhook", "status",
    "orders", "log",
    "test", "balance", "pnl", "limits", "confirm", "digest", "close", "afterhours",
    "pause", "resume", "delete", "totp", "lang", "cancel", "app",
)


def all_routers() -> list[Router]:
    """Fresh routers (a router attaches to one dispatcher only): commands first (they
    work in the middle of any flow), then the flows' free-text steps, then the catch-all."""
    return [
        common.build_router(),
        onboarding.build_router(),
        keys.build_router(),
        accounts.build_router(),
        mode.build_router(),
        webhook.build_router(),
        status.build_router(),
        test_alert.build_router(),
        pause.build_router(),
        delete.build_router(),
        totp.build_router(),
        language.build_router(),
        dashboard.build_router(),
        portfolio.build_router(),
        limits.build_router(),
        options.build_router(),
        open_orders.build_router(),
        approvals.build_router(),
        keys.build_flow(),
        totp.build_flow(),
        confirm.build_router(),
        common.build_fallback(),
    ]


def create_bot_for(token: str, api_url: str | None = None) -> Bot:
    if api_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url))
    else:
        session = AiohttpSession()
    return Bot(token, session=session)


def create_dispatcher(
    *,
    storage: Storage,
    keychecker: KeyChecker,
    watchers: WatcherSupervisor,
    notifier: Notifier,
    public_url: str,
    inflight: InflightMiddleware | None = None,
    forget_webhook_token: Callable[[str], None] | None = None,
    alert_tester: AlertTester | None = None,
    markets: Markets | None = None,
    run_alert: RunAlert | None = None,
    close_orders: CloseOrders | None = None,
) -> Dispatcher:
    """`run_alert(alert_id)` wakes the pipeline for an alert confirmed in the chat;
    `close_orders` stores and wakes `/close` sells (both wired by `moahook`)."""
    """Routers, middlewares, and the services handlers receive by keyword name."""
    # Conversation state in the database, encrypted (it may hold an App Secret between
    # two steps): any instance can carry a conversation on. Updates of one chat are
    # handled one after another, so a step's state is written before the next message
    # of that chat is read.
    dispatcher = Dispatcher(
        storage=DatabaseStorage(storage.conversations), events_isolation=SimpleEventIsolation()
    )
    # Handlers name their services: storage, keychecker, watchers, notifier, public_url.
    dispatcher.workflow_data.update(
        storage=storage,
        keychecker=keychecker,
        watchers=watchers,
        notifier=notifier,
        public_url=public_url.rstrip("/"),
        # Called with a webhook token that stopped being valid (rotate, delete), so a
        # cache in front of the hook endpoint drops it at once.
        forget_webhook_token=forget_webhook_token or _forget_nothing,
        # `/test`: the order pipeline's dry run (None: the command says it is unavailable).
        alert_tester=alert_tester,
        # SPEC section 15: KIS for /balance, /pnl, cancels; the pipeline's wake-ups
        kis=keychecker.kis,
        markets=markets or default_markets(),
        run_alert=run_alert or _no_pipeline,
        close_orders=close_orders or _no_close_orders,
    )
    tracker = inflight or InflightMiddleware()
    dispatcher.workflow_data["inflight"] = tracker
    user_middleware = UserMiddleware(storage.users)
    for observer in (dispatcher.message, dispatcher.callback_query):
        observer.outer_middleware(tracker)
        observer.outer_middleware(user_middleware)
        observer.filter(OwnPrivateChat())
    dispatcher.include_routers(*all_routers())
    return dispatcher


def _forget_nothing(_token: str) -> None:
    return None


def _no_pipeline(alert_id: int) -> None:
    log.warning("alert %d was confirmed but no pipeline is wired to place it", alert_id)


async def _no_close_orders(
    user_id: int, instrument: object, key: str, account_id: int | None = None
) -> int | None:
    log.warning("/close for user %d: no pipeline is wired to place it", user_id)
    return None


def command_list(lang: Lang) -> list[BotCommand]:
    return [BotCommand(command=name, description=t(lang, f"commands.{name}")) for name in COMMANDS]


async def set_commands(bot: Bot) -> None:
    """The command menu: Korean by default, English for English-language clients."""
    await bot.set_my_commands(command_list("ko"), scope=BotCommandScopeDefault())
    for lang in LANGS:
        await bot.set_my_commands(
            command_list(lang), scope=BotCommandScopeDefault(), language_code=lang
        )
