"""Commands that take an account's name (SPEC section 16): `/mode isa`, `/balance isa`…"""

from __future__ import annotations

from aiogram.types import Message

from bot.texts import Lang, t
from storage.facade import Storage
from storage.records import AccountRecord, UserRecord


async def account_named(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, name: str
) -> AccountRecord | None:
    """The user's account `name` ("": the default); None after saying there is none."""
    if not name:
        default = await storage.accounts.default(user.id)
        if default is None:  # pragma: no cover - every user has a default account
            await message.answer(t(lang, "accounts.unknown", name="-"))
        return default
    found = await storage.accounts.by_name(user.id, name)
    if found is None:
        await message.answer(t(lang, "accounts.unknown", name=name[:20]))
    return found
