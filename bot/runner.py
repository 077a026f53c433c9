"""Running the bot inside the aiohttp web app (one event loop), as `cleanup_ctx` steps.

`attach_bot(app, …)` appends, in order: the fill-notice watchers, then the bot's life
on this instance — the Telegram side (long polling by default, or Telegram webhook
mode on the same web server when `MOAHOOK_TELEGRAM_WEBHOOK_URL` is set, and the
notifier) under the `telegram` lease (`bot.telegram_side`). Shutdown runs in reverse:
updates stop first (running handlers get a bounded grace), then the notifier, then
the watchers; the bot's HTTP session is closed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.notifier import Notifier
from bot.startup import TelegramStartup
from bot.telegram_side import TelegramSide, derived_webhook_secret
from bot.watchers import WatcherSupervisor
from storage.coordination import TELEGRAM_LEASE, Coordinator, SoleInstance

log = logging.getLogger(__name__)

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
BOT_STARTED = web.AppKey("moahook_bot_started", asyncio.Event)
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"


def watchers_ctx(watchers: WatcherSupervisor) -> CleanupCtx:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await watchers.start()
        yield
        await watchers.close()

    return ctx


def telegram_ctx(
    bot: Bot,
    dispatcher: Dispatcher,
    *,
    coordinator: Coordinator | None,
    side: TelegramSide,
    webhook: bool,
    started: asyncio.Event,
    startup: TelegramStartup,
) -> CleanupCtx:
    """The bot's life on this instance. Telegram is reached first (`getMe`, retried while
    it is out of reach, so the web server answers meanwhile and `/healthz` says why);
    the Telegram side (polling or registering the webhook, sending the outbox) runs
    under the `telegram` lease; without a shared coordinator this instance holds it
    for its whole life."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        workflow = {"dispatcher": dispatcher, **dispatcher.workflow_data}
        if webhook:  # every instance takes updates in webhook mode
            await dispatcher.emit_startup(bot=bot, **workflow)

        own = coordinator is None

        async def reach() -> None:
            await startup.run(_nothing)
            if not side.shared:  # this instance alone: started once updates can arrive
                await side.receiving.wait()
            started.set()

        reaching = asyncio.create_task(reach(), name="telegram start-up")
        local = SoleInstance() if own else coordinator
        assert local is not None
        if own:
            local.add_work(TELEGRAM_LEASE, side)
            await local.start()
        try:
            yield
        finally:
            reaching.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await reaching
            if own:
                await local.close()
            else:
                await side.losing(TELEGRAM_LEASE)
            if webhook:
                with contextlib.suppress(Exception):
                    await dispatcher.emit_shutdown(bot=bot, **workflow)
            await bot.session.close()

    return ctx


async def _nothing() -> None:
    return None


def attach_bot(
    app: web.Application,
    *,
    bot: Bot,
    dispatcher: Dispatcher,
    notifier: Notifier,
    watchers: WatcherSupervisor,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    coordinator: Coordinator | None = None,
    shared: bool = False,
    app_url: str | None = None,
    startup: TelegramStartup | None = None,
) -> asyncio.Event:
    """Wire the whole bot side into `app`; the returned event is set once it started.

    With a shared `coordinator` (several instances), the Telegram side is registered as
    work under the `telegram` lease and runs wherever that lease is; the caller starts
    the coordinator after this. `app_url`: the dashboard's https URL, set as the chats'
    menu button."""
    started = asyncio.Event()
    app[BOT_STARTED] = started
    app.cleanup_ctx.append(watchers_ctx(watchers))
    secret = webhook_secret or derived_webhook_secret(bot.token)
    if webhook_url:
        path = urlsplit(webhook_url).path or DEFAULT_WEBHOOK_PATH
        SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret).register(
            app, path=path
        )
    reach = startup or TelegramStartup(bot)
    side = TelegramSide(
        bot=bot, dispatcher=dispatcher, notifier=notifier,
        coordinator=coordinator or SoleInstance(), shared=shared, webhook_url=webhook_url,
        webhook_secret=secret, app_url=app_url, reached=reach.reached,
    )
    if coordinator is not None:
        coordinator.add_work(TELEGRAM_LEASE, side)
    app.cleanup_ctx.append(
        telegram_ctx(bot, dispatcher, coordinator=coordinator, side=side,
                     webhook=bool(webhook_url), started=started, startup=reach)
    )
    return started
