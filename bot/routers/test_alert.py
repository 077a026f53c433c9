"""`/test <alert message>`: what the alert would do now, without trading."""

from __future__ import annotations

from typing import Protocol

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.formatting import format_dry_run
from bot.texts import Lang, t
from storage.notices import Notice
from storage.records import UserRecord

# Phones turn typed quotes into typographic ones; JSON needs the plain kind.
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "‘": "'", "’": "'"})


class AlertTester(Protocol):
    """Sizes an alert message against each account it is for with fresh KIS figures and
    says what would be ordered (or why not), sending no order (wired in by `moahook`)."""

    async def dry_run(self, user_id: int, body: bytes) -> list[Notice]: ...


async def test_alert(
    message: Message, command: CommandObject, user: UserRecord, lang: Lang,
    alert_tester: AlertTester | None,
) -> None:
    body = (command.args or "").strip().translate(_QUOTES)
    if not body:
        await message.answer(t(lang, "test.usage"))
        return
    if alert_tester is None:
        await message.answer(t(lang, "test.unavailable"))
        return
    notices = await alert_tester.dry_run(user.id, body.encode())
    await message.answer("\n\n".join(format_dry_run(notice, lang) for notice in notices))


def build_router() -> Router:
    router = Router(name="test")
    router.message.register(test_alert, Command("test"))
    return router
