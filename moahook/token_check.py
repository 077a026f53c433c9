"""Telegram's verdict on a bot token while the rest of the configuration is unusable,
so that `moahook serve` reports every start-up error at once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.factory import create_bot_for
from bot.startup import token_refused


def token_refused_by_telegram(env: Mapping[str, str]) -> str | None:
    """One `getMe` with the raw MOAHOOK_BOT_TOKEN (and MOAHOOK_TELEGRAM_API_URL) when the
    token is well formed; the refusal line, or None (accepted, or Telegram not asked)."""
    token = (env.get("MOAHOOK_BOT_TOKEN") or "").strip()
    if ":" not in token or not token.split(":")[0].isdigit():
        return None  # malformed: the configuration error says so already
    api_url = (env.get("MOAHOOK_TELEGRAM_API_URL") or "").strip() or None
    return asyncio.run(_ask(token, api_url))


async def _ask(token: str, api_url: str | None) -> str | None:
    try:
        bot = create_bot_for(token, api_url)
    except ValueError:
        return None
    try:
        return await token_refused(bot)
    finally:
        await bot.session.close()
