"""Middlewares: who is asking (from storage), in which language, and in-flight tracking."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

from bot.filters import event_chat, event_user, own_private_chat
from bot.texts import DEFAULT_LANG, Lang, parse_lang
from storage.records import UserRecord
from storage.repositories.users import Users

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def user_lang(user: UserRecord) -> Lang:
    return parse_lang(user.language) or DEFAULT_LANG


class UserMiddleware(BaseMiddleware):
    """Loads (or creates) the sender's user and puts `user` and `lang` in handler data.

    Updates from anywhere but the sender's own private chat stop here: nothing of a
    user's is ever looked up for a group or for someone else's chat.
    """

    def __init__(self, users: Users) -> None:
        self._users = users

    async def __call__(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        sender = event_user(event)
        chat = event_chat(event)
        if sender is None or chat is None or not own_private_chat(sender, chat):
            return None
        # A new user's language comes from their Telegram app; later, from /lang.
        first_lang = parse_lang(sender.language_code) or DEFAULT_LANG
        user = await self._users.get_or_create(
            sender.id, chat.id, first_lang, username=sender.username
        )
        data["user"] = user
        data["lang"] = user_lang(user)
        return await handler(event, data)


class InflightMiddleware(BaseMiddleware):
    """Remembers running handlers so shutdown can let them finish (bounded)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(
        self, handler: Handler, event: TelegramObject, data: dict[str, Any]
    ) -> Any:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - handlers always run in a task
            return await handler(event, data)
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - bounded wait
        """Wait up to `timeout` for running handlers, then cancel what is left."""
        current = asyncio.current_task()
        pending = {task for task in self._tasks if task is not current and not task.done()}
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            log.warning("cancelled %d bot handlers still running at shutdown", len(still))
            await asyncio.gather(*still, return_exceptions=True)
