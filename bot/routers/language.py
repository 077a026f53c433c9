"""`/lang ko|en`."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.notifier import Notifier
from bot.texts import Lang, parse_lang, t
from storage.facade import Storage
from storage.records import UserRecord


async def set_lang(
    message: Message, command: CommandObject, user: UserRecord, lang: Lang, storage: Storage,
    notifier: Notifier,
) -> None:
    arg = (command.args or "").strip().lower()
    chosen = parse_lang(arg) if arg in ("ko", "en") else None
    if chosen is None:
        await message.answer(t(lang, "lang.usage"))
        return
    await storage.users.set_language(user.id, chosen)
    notifier.set_language(user.id, chosen)
    await message.answer(t(chosen, "lang.set"))


def build_router() -> Router:
    router = Router(name="language")
    router.message.register(set_lang, Command("lang"))
    return router
