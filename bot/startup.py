"""Bringing the bot up against Telegram: a token Telegram refuses stops the service with
one line; Telegram out of reach is retried with backoff, and the reason is kept for
`/healthz` meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiogram import Bot
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiohttp import ClientError

log = logging.getLogger(__name__)

BACKOFF_S: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
Sleep = Callable[[float], Awaitable[None]]
# Failures that say nothing about the token: Telegram (or the way to it) is down.
_TRANSIENT: Final = (
    TelegramNetworkError, TelegramServerError, TelegramRetryAfter, ClientError, OSError,
    TimeoutError,
)


class BotTokenRefused(Exception):
    """Telegram does not know this bot token (wrong, or revoked with @BotFather)."""


class TelegramStartup:
    """`await run(prepare)`: `getMe`, then `prepare()` (webhook set-up), retried while
    Telegram cannot be reached. `status` says where it stands, for `/healthz`."""

    def __init__(
        self,
        bot: Bot,
        *,
        backoff: Sequence[float] = BACKOFF_S,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._bot = bot
        self._backoff = tuple(backoff)
        self._sleep = sleep
        self.status = "connecting to Telegram"
        self.refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.reached = asyncio.Event()  # Telegram answered getMe with this token
        self.username = ""

    async def run(self, prepare: Callable[[], Awaitable[object]]) -> None:
        """Returns once Telegram answered; raises `BotTokenRefused` (and resolves
        `refused` with the one-line reason) when it refuses the token."""
        attempt = 0
        while True:
            try:
                me = await self._bot.get_me()
                await prepare()
            except (TelegramUnauthorizedError, TelegramNotFound) as exc:
                reason = refused_reason(exc)
                self.status = "Telegram refused the bot token"
                if not self.refused.done():
                    self.refused.set_result(reason)
                raise BotTokenRefused(reason) from None
            except _TRANSIENT as exc:
                delay = self._backoff[min(attempt, len(self._backoff) - 1)]
                if isinstance(exc, TelegramRetryAfter):
                    delay = max(delay, float(exc.retry_after))
                attempt += 1
                self.status = f"Telegram unreachable ({_text(exc)}); retrying in {delay:g} s"
                log.warning("%s (attempt %d)", self.status, attempt)
                await self._sleep(delay)
                continue
            self.username = me.username or ""
            self.status = "ok"
            self.reached.set()
            log.info("telegram bot @%s started", self.username)
            return


def refused_reason(exc: BaseException) -> str:
    return (
        "Telegram refused MOAHOOK_BOT_TOKEN (wrong, or revoked with @BotFather): "
        f"{_text(exc)}. Copy the token @BotFather shows for your bot (/mybots → API Token) "
        "into MOAHOOK_BOT_TOKEN."
    )


async def token_refused(bot: Bot, timeout: float = 5.0) -> str | None:  # noqa: ASYNC109 - one bounded try
    """One `getMe`: the reason when Telegram refuses the token; None when it accepts it
    or cannot be asked (then start-up tells, retrying)."""
    try:
        async with asyncio.timeout(timeout):
            await bot.get_me()
    except (TelegramUnauthorizedError, TelegramNotFound) as exc:
        return refused_reason(exc)
    except (*_TRANSIENT, TimeoutError):
        return None
    return None


def _text(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
