"""Running the bot inside the aiohttp web app (one event loop), as `cleanup_ctx` steps.

`attach_bot(app, …)` appends, in order: the fill-notice watchers, the notifier, and
Telegram updates — long polling as a task by default, or Telegram webhook mode on the
same web server when `MOAHOOK_TELEGRAM_WEBHOOK_URL` is set. Shutdown runs in reverse:
updates stop first (running handlers get a bounded grace), then the notifier, then
the watchers; the bot's HTTP session is closed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.factory import set_commands
from bot.middlewares import InflightMiddleware
from bot.notifier import Notifier
from bot.startup import TelegramStartup
from bot.watchers import WatcherSupervisor

log = logging.getLogger(__name__)

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
BOT_STARTED = web.AppKey("moahook_bot_started", asyncio.Event)
DEFAULT_WEBHOOK_PATH = "/telegram/webhook"
HANDLER_GRACE = 10.0


def _inflight(dispatcher: Dispatcher) -> InflightMiddleware | None:
    tracker = dispatcher.workflow_data.get("inflight")
    return tracker if isinstance(tracker, InflightMiddleware) else None


def watchers_ctx(watchers: WatcherSupervisor) -> CleanupCtx:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await watchers.start()
        yield
        await watchers.close()

    return ctx


def notifier_ctx(notifier: Notifier) -> CleanupCtx:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        await notifier.start()
        yield
        await notifier.close()

    return ctx


def polling_ctx(
    bot: Bot, dispatcher: Dispatcher, *, started: asyncio.Event | None = None,
    polling_timeout: int = 10, startup: TelegramStartup | None = None,
) -> CleanupCtx:
    """Long polling as a task; `handle_signals=False` leaves SIGTERM to aiohttp's runner.

    The task first reaches Telegram (`TelegramStartup`: retried while it is out of reach),
    so the web server answers — `/healthz` saying why — while it waits."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        starter = startup or TelegramStartup(bot)

        async def run() -> None:
            await starter.run(lambda: bot.delete_webhook(drop_pending_updates=False))
            with contextlib.suppress(Exception):  # a missing command menu is not fatal
                await set_commands(bot)
            if started is not None:
                started.set()
            await dispatcher.start_polling(
                bot, handle_signals=False, close_bot_session=False,
                polling_timeout=polling_timeout,
            )

        task = asyncio.create_task(run(), name="telegram polling")
        try:
            yield
        finally:
            await _stop_polling(dispatcher, task)
            tracker = _inflight(dispatcher)
            if tracker is not None:
                await tracker.drain(HANDLER_GRACE)
            await bot.session.close()

    return ctx


async def _stop_polling(dispatcher: Dispatcher, task: asyncio.Task[None]) -> None:
    if task.done():
        with contextlib.suppress(Exception, asyncio.CancelledError):
            task.result()
        return
    try:
        await dispatcher.stop_polling()
    except RuntimeError:  # polling had not started yet (still reaching Telegram)
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def webhook_ctx(
    app: web.Application,
    bot: Bot,
    dispatcher: Dispatcher,
    *,
    url: str,
    secret_token: str | None = None,
    started: asyncio.Event | None = None,
    startup: TelegramStartup | None = None,
) -> CleanupCtx:
    """Telegram webhook mode: updates arrive on this app at the URL's path, and only
    requests carrying Telegram's secret-token header are accepted. The webhook is set
    once Telegram is reached (retried meanwhile, as for polling)."""
    path = urlsplit(url).path or DEFAULT_WEBHOOK_PATH
    token = secret_token or secrets.token_urlsafe(32)
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=token).register(
        app, path=path
    )

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        workflow = {"dispatcher": dispatcher, **dispatcher.workflow_data}
        await dispatcher.emit_startup(bot=bot, **workflow)
        starter = startup or TelegramStartup(bot)

        async def run() -> None:
            await starter.run(lambda: bot.set_webhook(
                url, secret_token=token, allowed_updates=dispatcher.resolve_used_update_types()
            ))
            with contextlib.suppress(Exception):
                await set_commands(bot)
            if started is not None:
                started.set()

        task = asyncio.create_task(run(), name="telegram webhook set-up")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
            tracker = _inflight(dispatcher)
            if tracker is not None:
                await tracker.drain(HANDLER_GRACE)
            with contextlib.suppress(Exception):
                await dispatcher.emit_shutdown(bot=bot, **workflow)
            await bot.session.close()

    return ctx


def attach_bot(
    app: web.Application,
    *,
    bot: Bot,
    dispatcher: Dispatcher,
    notifier: Notifier,
    watchers: WatcherSupervisor,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    startup: TelegramStartup | None = None,
) -> asyncio.Event:
    """Wire the whole bot side into `app`; the returned event is set once it started."""
    started = asyncio.Event()
    app[BOT_STARTED] = started
    app.cleanup_ctx.append(watchers_ctx(watchers))
    app.cleanup_ctx.append(notifier_ctx(notifier))
    if webhook_url:
        app.cleanup_ctx.append(
            webhook_ctx(app, bot, dispatcher, url=webhook_url, secret_token=webhook_secret,
                        started=started, startup=startup)
        )
    else:
        app.cleanup_ctx.append(polling_ctx(bot, dispatcher, started=started, startup=startup))
    return started
