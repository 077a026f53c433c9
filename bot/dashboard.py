"""The bot's side of the web dashboard: `/app`, the chat menu button, and sending the
dashboard's one-time codes to a user's chat.

The menu button and the web-app buttons exist only when the public URL is https
(Telegram opens nothing else inside the app); otherwise `/app` gives the address to
open in a browser.
"""

from __future__ import annotations

import logging
from typing import Final

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MenuButtonWebApp,
    Message,
    WebAppInfo,
)

from bot.middlewares import user_lang
from bot.texts import Lang, t
from bot.views import NO_PREVIEW
from storage.records import UserRecord

log = logging.getLogger(__name__)

APP_PATH: Final = "/app"
# The dashboard's code purposes (webhook_server.dashboard.second_factor) → what the
# code confirms, as the chat says it.
PURPOSE_ACTIONS: Final = {
    "web_signin": "tfa.action_signin",
    "web_keys": "tfa.action_keys",
    "web_real": "tfa.action_real",
    "web_rotate": "tfa.action_rotate",
}


def dashboard_url(public_url: str) -> str:
    return public_url.rstrip("/") + APP_PATH


def mini_app_url(public_url: str) -> str | None:
    """The dashboard's URL when Telegram can open it as a Mini App (https only)."""
    return dashboard_url(public_url) if public_url.lower().startswith("https://") else None


def open_keyboard(lang: Lang, app_url: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=t(lang, "app.button"), web_app=WebAppInfo(url=app_url))
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def set_menu_button(bot: Bot, app_url: str | None) -> None:
    """The chat's menu button opens the dashboard (every private chat, default scope)."""
    if app_url is None:
        return
    await bot.set_chat_menu_button(
        menu_button=MenuButtonWebApp(text=t("ko", "app.button"), web_app=WebAppInfo(url=app_url))
    )


async def open_app(message: Message, lang: Lang, public_url: str) -> None:
    app_url = mini_app_url(public_url)
    if app_url is None:
        await message.answer(
            t(lang, "app.browser_only", url=dashboard_url(public_url)),
            link_preview_options=NO_PREVIEW,
        )
        return
    await message.answer(t(lang, "app.open"), reply_markup=open_keyboard(lang, app_url))


async def offer_dashboard(message: Message, lang: Lang, public_url: str) -> None:
    """`/keys` offers the dashboard first (when Telegram can open it), then goes on."""
    app_url = mini_app_url(public_url)
    if app_url is not None:
        await message.answer(
            t(lang, "keys.dashboard_first"), reply_markup=open_keyboard(lang, app_url)
        )


class ChatCodeSender:
    """Sends a dashboard code to the user's chat as its own message, straight through the
    Bot API: never through the outbox, whose rows are stored in clear."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    def __repr__(self) -> str:
        return "ChatCodeSender()"

    async def __call__(self, user: UserRecord, purpose: str, code: str, /) -> bool:
        lang = user_lang(user)
        action = t(lang, PURPOSE_ACTIONS.get(purpose, "tfa.action_signin"))
        try:
            text = t(lang, "dash.code", code=code, action=action)
            await self._bot.send_message(user.chat_id, text)
        except TelegramAPIError as exc:
            log.warning("dashboard code not delivered to user %d: %s", user.id, type(exc).__name__)
            return False
        return True


def build_router() -> Router:
    router = Router(name="dashboard")
    router.message.register(open_app, Command("app"))
    return router
