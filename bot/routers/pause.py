"""`/pause` and `/resume`: alerts keep being recorded; only acting on them stops."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.texts import Lang, t
from storage.facade import Storage
from storage.records import UserRecord


async def pause(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    if user.paused:
        await message.answer(t(lang, "pause.already"))
        return
    await storage.users.set_paused(user.id, True)
    await storage.audit.record(user.id, "paused")
    await message.answer(t(lang, "pause.done"))


async def resume(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    if not user.paused:
        await message.answer(t(lang, "resume.already"))
        return
    await storage.users.set_paused(user.id, False)
    await storage.audit.record(user.id, "resumed")
    await message.answer(t(lang, "resume.done"))


def build_router() -> Router:
    router = Router(name="pause")
    router.message.register(pause, Command("pause"))
    router.message.register(resume, Command("resume"))
    return router
