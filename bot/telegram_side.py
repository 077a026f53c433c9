"""The part of the bot that one instance at a time runs: receiving updates by long
polling (or registering the webhook) and sending the outbox (SPEC section 12).

It is work under the `telegram` lease: started when this instance gains the lease,
stopped before the lease is handed over, so Telegram never sees two pollers (it
answers the second with 409) and each chat notice is sent by one instance. In
webhook mode every instance takes updates; only the holder registers the webhook.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot, Dispatcher

from bot.dashboard import set_menu_button
from bot.factory import set_commands
from bot.middlewares import InflightMiddleware
from bot.notifier import Notifier
from storage.coordination import Coordinator

log = logging.getLogger(__name__)

HANDLER_GRACE = 10.0


def derived_webhook_secret(bot_token: str) -> str:
    """The webhook secret every instance agrees on without configuration (Telegram
    sends it back with each update); derived from the bot token, never the token."""
    digest = hmac.new(bot_token.encode(), b"moahook telegram webhook secret", hashlib.sha256)
    return digest.hexdigest()[:48]


class TelegramSide:
    def __init__(
        self,
        *,
        bot: Bot,
        dispatcher: Dispatcher,
        notifier: Notifier,
        coordinator: Coordinator,
        shared: bool,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        polling_timeout: int = 10,
        app_url: str | None = None,
        reached: asyncio.Event | None = None,
    ) -> None:
        self._bot = bot
        self._dispatcher = dispatcher
        self._notifier = notifier
        self._coordinator = coordinator
        self._shared = shared
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._polling_timeout = polling_timeout
        self._app_url = app_url
        self._reached = reached
        self._polling: asyncio.Task[None] | None = None
        self.running = asyncio.Event()
        self.receiving = asyncio.Event()  # the webhook is set, or polling is starting

    def __repr__(self) -> str:
        return f"TelegramSide(running={self.running.is_set()})"

    @property
    def shared(self) -> bool:
        """Several instances may run it (one at a time, under the lease)."""
        return self._shared

    async def gained(self, name: str, epoch: int) -> None:
        coordinator = self._coordinator

        def may_send() -> bool:
            return coordinator.valid(name, epoch)

        claim_as = (coordinator.instance_id, epoch) if self._shared else None
        await self._notifier.start(claim_as=claim_as, may_send=may_send)
        # Updates once Telegram has been reached (start-up retries until then).
        self._polling = asyncio.create_task(self._receive(), name="telegram updates")
        self.running.set()
        log.info("this instance now runs the Telegram side (%s)",
                 "webhook" if self._webhook_url else "long polling")

    async def _receive(self) -> None:
        if self._reached is not None:
            await self._reached.wait()
        with contextlib.suppress(Exception):  # a missing command menu is not fatal
            await set_commands(self._bot)
        with contextlib.suppress(Exception):  # nor a missing menu button
            await set_menu_button(self._bot, self._app_url)
        if self._webhook_url:
            await self._retrying(lambda: self._bot.set_webhook(
                self._webhook_url or "",
                secret_token=self._webhook_secret,
                allowed_updates=self._dispatcher.resolve_used_update_types(),
            ))
            self.receiving.set()
            return
        await self._retrying(lambda: self._bot.delete_webhook(drop_pending_updates=False))
        self.receiving.set()
        await self._dispatcher.start_polling(
            self._bot, handle_signals=False, close_bot_session=False,
            polling_timeout=self._polling_timeout,
        )

    async def _retrying(self, call: Callable[[], Awaitable[object]]) -> None:
        delay = 1.0
        while True:
            try:
                await call()
                return
            except Exception as exc:  # Telegram out of reach again: keep trying, bounded
                log.warning("Telegram set-up failed (%s); retrying in %.0f s",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)

    async def losing(self, name: str) -> None:
        if not self.running.is_set():
            return
        self.running.clear()
        self.receiving.clear()
        task, self._polling = self._polling, None
        if task is not None:
            await _stop_polling(self._dispatcher, task)
            tracker = self._dispatcher.workflow_data.get("inflight")
            if isinstance(tracker, InflightMiddleware):
                await tracker.drain(HANDLER_GRACE)
        await self._notifier.close()
        log.info("this instance no longer runs the Telegram side")


async def _stop_polling(dispatcher: Dispatcher, task: asyncio.Task[None]) -> None:
    if task.done():
        with contextlib.suppress(Exception):
            task.result()
        return
    try:
        await dispatcher.stop_polling()
    except RuntimeError:  # polling had not started yet
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
