"""`/webhook` (URL and alert templates) and `/webhook rotate` (2FA)."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_ROTATE, send_code
from bot.views import NO_PREVIEW, webhook_message, webhook_url
from storage.facade import Storage
from storage.records import UserRecord


async def webhook(
    message: Message, command: CommandObject, state: FSMContext, user: UserRecord, lang: Lang,
    storage: Storage, public_url: str,
) -> None:
    argument = (command.args or "").strip().lower()
    if argument == "rotate":
        await state.clear()
        await state.set_state(Confirm.code)
        await state.update_data(purpose=PURPOSE_ROTATE)
        await send_code(message, storage, user, PURPOSE_ROTATE, lang)
        return
    if argument:
        await message.answer(t(lang, "webhook.usage"))
        return
    url = webhook_url(public_url, await storage.users.webhook_token(user.id))
    await message.answer(**webhook_message(lang, url).as_kwargs(), link_preview_options=NO_PREVIEW)


async def confirmed_rotate(
    message: Message, user: UserRecord, lang: Lang, storage: Storage, public_url: str,
    forget_webhook_token: Callable[[str], None],
) -> None:
    old = await storage.users.webhook_token(user.id)
    token = await storage.users.rotate_webhook_token(user.id)
    forget_webhook_token(old)
    await storage.audit.record(user.id, "webhook.rotated")
    await message.answer(t(lang, "webhook.rotated"))
    url = webhook_url(public_url, token)
    await message.answer(**webhook_message(lang, url).as_kwargs(), link_preview_options=NO_PREVIEW)


def build_router() -> Router:
    router = Router(name="webhook")
    router.message.register(webhook, Command("webhook"))
    return router
