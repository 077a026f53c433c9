"""`/start` and `/help`."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.texts import Lang, t
from bot.views import NO_PREVIEW, webhook_url
from storage.facade import Storage
from storage.records import UserRecord


async def start(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, public_url: str
) -> None:
    # The webhook URL is shown from the first message on, before any keys exist.
    url = webhook_url(public_url, await storage.users.webhook_token(user.id))
    await message.answer(t(lang, "start", url=url), link_preview_options=NO_PREVIEW)


async def help_(message: Message, lang: Lang) -> None:
    await message.answer(t(lang, "help"))


def build_router() -> Router:
    router = Router(name="onboarding")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    return router
