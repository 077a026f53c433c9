"""`/cancel` and the catch-all for anything no other handler took."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.routers.totp import forget_enrolment_qr
from bot.texts import Lang, t


async def cancel(message: Message, state: FSMContext, lang: Lang, bot: Bot) -> None:
    had_flow = await state.get_state() is not None
    await forget_enrolment_qr(state, bot, message.chat.id)
    await state.clear()
    await message.answer(t(lang, "cancel.done" if had_flow else "cancel.nothing"))


async def unknown_text(message: Message, lang: Lang) -> None:
    await message.answer(t(lang, "unknown"))


async def stale_button(query: CallbackQuery) -> None:
    # A button from an old message (the flow it belonged to is over): just stop the spinner.
    await query.answer()


def build_router() -> Router:
    router = Router(name="common")
    router.message.register(cancel, Command("cancel"))
    return router


def build_fallback() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_text, F.text)
    router.callback_query.register(stale_button)
    return router
