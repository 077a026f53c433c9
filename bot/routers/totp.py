"""`/totp`: an authenticator app as the second factor; `/totp off` removes it.

Enrolment: a chat 2FA code first, then the secret as a QR code (and as text, to type
in), then the app's first code confirms it. The QR message is deleted once confirmed
(or abandoned): the secret is never shown again. Checks live in storage (`Totp`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, Message

from bot.qr import qr_png
from bot.states import TotpFlow
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_TOTP, CodeCheck, check_code, check_totp, send_code
from storage.facade import Storage
from storage.records import UserRecord, VerifyResult
from storage.repositories.twofactor import well_formed


async def totp(
    message: Message, command: CommandObject, state: FSMContext, user: UserRecord,
    lang: Lang, storage: Storage, bot: Bot,
) -> None:
    await forget_enrolment_qr(state, bot, message.chat.id)
    await state.clear()
    argument = (command.args or "").strip().lower()
    enrolled = await storage.totp.enrolled(user.id)
    if argument == "off":
        if not enrolled:
            await message.answer(t(lang, "totp.not_enrolled"))
            return
        await state.set_state(TotpFlow.off_code)
        await message.answer(t(lang, "totp.ask_off"))
        return
    if argument:
        await message.answer(t(lang, "totp.usage"))
        return
    if enrolled:
        await message.answer(t(lang, "totp.already"))
        return
    await state.set_state(TotpFlow.chat_code)
    await send_code(message, storage, user, PURPOSE_TOTP, lang)


async def got_chat_code(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage
) -> None:
    outcome = await check_code(message, storage, user, PURPOSE_TOTP, lang)
    if outcome is CodeCheck.RETRY:
        return
    if outcome is CodeCheck.OVER:
        await state.clear()
        return
    enrolment = await storage.totp.begin(user.id, f"Telegram {user.telegram_id}")
    if enrolment is None:
        await state.clear()
        await message.answer(t(lang, "totp.already"))
        return
    shown = await message.answer_photo(
        BufferedInputFile(qr_png(enrolment.uri), filename="moahook-totp.png"),
        caption=t(lang, "totp.scan", secret=enrolment.secret),
    )
    await state.set_state(TotpFlow.first_code)
    await state.update_data(qr_message=shown.message_id)


async def _authenticator_answer(
    message: Message, lang: Lang, check: Callable[[str], Awaitable[VerifyResult]],
    restart: str,
) -> CodeCheck:
    answer = (message.text or "").strip()
    if not well_formed(answer):
        await message.answer(t(lang, "tfa.not_a_code"))
        return CodeCheck.RETRY
    return await check_totp(message, await check(answer), lang, restart)


async def got_first_code(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage,
    bot: Bot,
) -> None:
    outcome = await _authenticator_answer(
        message, lang, lambda code: storage.totp.confirm(user.id, code), "/totp"
    )
    if outcome is CodeCheck.RETRY:
        return
    await forget_enrolment_qr(state, bot, message.chat.id)
    await state.clear()
    if outcome is CodeCheck.OK:
        await storage.audit.record(user.id, "totp.enrolled")
        await message.answer(t(lang, "totp.enrolled"))


async def got_off_code(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage
) -> None:
    outcome = await _authenticator_answer(
        message, lang, lambda code: storage.totp.disable(user.id, code), "/totp off"
    )
    if outcome is CodeCheck.RETRY:
        return
    await state.clear()
    if outcome is CodeCheck.OK:
        await storage.audit.record(user.id, "totp.disabled")
        await message.answer(t(lang, "totp.disabled"))


async def forget_enrolment_qr(state: FSMContext, bot: Bot, chat_id: int) -> None:
    """The QR message carries the secret: it goes when the enrolment ends either way."""
    shown = (await state.get_data()).get("qr_message")
    if isinstance(shown, int):
        with contextlib.suppress(TelegramAPIError):
            await bot.delete_message(chat_id, shown)


def build_router() -> Router:
    router = Router(name="totp")
    router.message.register(totp, Command("totp"))
    return router


def build_flow() -> Router:
    router = Router(name="totp-flow")
    router.message.register(got_chat_code, TotpFlow.chat_code)
    router.message.register(got_first_code, TotpFlow.first_code)
    router.message.register(got_off_code, TotpFlow.off_code)
    return router
