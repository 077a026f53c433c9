"""`/mode`, `/paper`, `/real`: the active environment (real needs validated keys + 2FA)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.formatting import env_label
from bot.keyboards import ModeSwitch, mode_keyboard
from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_REAL, send_code
from bot.views import mode_message
from bot.watchers import WatcherSupervisor
from kis.env import Environment
from storage.facade import Storage
from storage.records import UserRecord


async def show_mode(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    key_sets = await storage.key_sets.for_user(user.id)
    await message.answer(mode_message(lang, user, key_sets), reply_markup=mode_keyboard())


async def paper(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor,
) -> None:
    await request_switch(message, state, user, lang, storage, watchers, Environment.PAPER)


async def real(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor,
) -> None:
    await request_switch(message, state, user, lang, storage, watchers, Environment.REAL)


async def switch_button(
    query: CallbackQuery, callback_data: ModeSwitch, state: FSMContext, user: UserRecord,
    lang: Lang, storage: Storage, watchers: WatcherSupervisor,
) -> None:
    await query.answer()
    if callback_data.env not in ("paper", "real") or not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    await request_switch(
        query.message, state, user, lang, storage, watchers, Environment(callback_data.env)
    )


async def request_switch(
    message: Message,
    state: FSMContext,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    watchers: WatcherSupervisor,
    env: Environment,
) -> None:
    label = env_label(lang, env.value)
    if user.active_environment is env:
        await message.answer(t(lang, "mode.already", env=label))
        return
    keys = await storage.key_sets.get(user.id, env)
    if env is Environment.REAL:
        if keys is None or not keys.validated:
            await message.answer(t(lang, "mode.real_needs_keys"))
            return
        await state.clear()
        await state.set_state(Confirm.code)
        await state.update_data(purpose=PURPOSE_REAL)
        await send_code(message, storage, user, PURPOSE_REAL, lang)
        return
    await switch(message, user, lang, storage, watchers, env)
    if keys is None:
        await message.answer(t(lang, "mode.paper_no_keys"))


async def switch(
    message: Message,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    watchers: WatcherSupervisor,
    env: Environment,
) -> None:
    """Make `env` active and move the fill-notice watcher with it."""
    await storage.users.set_active_environment(user.id, env)
    await storage.audit.record(user.id, "mode.switched", {"environment": env.value})
    await watchers.sync(user.id)
    await message.answer(t(lang, "mode.switched", env=env_label(lang, env.value)))


async def confirmed_real(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor,
) -> None:
    """After the 2FA code: check again (keys may have changed meanwhile), then switch."""
    keys = await storage.key_sets.get(user.id, Environment.REAL)
    if keys is None or not keys.validated:
        await message.answer(t(lang, "mode.real_needs_keys"))
        return
    await switch(message, user, lang, storage, watchers, Environment.REAL)


def build_router() -> Router:
    router = Router(name="mode")
    router.message.register(show_mode, Command("mode"))
    router.message.register(paper, Command("paper"))
    router.message.register(real, Command("real"))
    router.callback_query.register(switch_button, ModeSwitch.filter())
    return router
