"""`/mode [NAME]`, `/paper [NAME]`, `/real [NAME]`: an account's active environment (the
default account's without a name; real needs validated keys + 2FA)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.account_args import account_named
from bot.formatting import env_label
from bot.keyboards import AccountModeSwitch, ModeSwitch, mode_keyboard
from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_REAL, send_code
from bot.views import keys_state, mode_message
from bot.watchers import WatcherSupervisor
from kis.env import Environment
from storage.facade import Storage
from storage.records import AccountRecord, UserRecord


def _name(command: CommandObject | None) -> str:
    return ((command.args or "") if command is not None else "").strip()


async def show_mode(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    command: CommandObject | None = None,
) -> None:
    name = _name(command)
    accounts = await storage.accounts.for_user(user.id)
    if not name and len(accounts) == 1:
        key_sets = await storage.key_sets.for_account(accounts[0].id)
        await message.answer(mode_message(lang, user, key_sets), reply_markup=mode_keyboard())
        return
    shown = [a for a in accounts if a.name == name.lower()] if name else accounts
    if name and not shown:
        await account_named(message, user, lang, storage, name)  # says there is none
        return
    for account in shown:
        by_env = {k.environment: k for k in await storage.key_sets.for_account(account.id)}
        await message.answer(
            t(lang, "mode.account_show", name=account.name,
              env=env_label(lang, account.active_environment.value),
              paper=keys_state(lang, by_env.get(Environment.PAPER)),
              real=keys_state(lang, by_env.get(Environment.REAL))),
            reply_markup=mode_keyboard(account.id),
        )


async def paper(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, command: CommandObject | None = None,
) -> None:
    account = await account_named(message, user, lang, storage, _name(command))
    if account is not None:
        await request_switch(message, state, user, lang, storage, watchers, Environment.PAPER,
                             account)


async def real(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, command: CommandObject | None = None,
) -> None:
    account = await account_named(message, user, lang, storage, _name(command))
    if account is not None:
        await request_switch(message, state, user, lang, storage, watchers, Environment.REAL,
                             account)


async def switch_button(
    query: CallbackQuery, callback_data: ModeSwitch | AccountModeSwitch, state: FSMContext,
    user: UserRecord, lang: Lang, storage: Storage, watchers: WatcherSupervisor,
) -> None:
    await query.answer()
    if callback_data.env not in ("paper", "real") or not isinstance(query.message, Message):
        return
    await query.message.edit_reply_markup(reply_markup=None)
    account = await _account(storage, user, getattr(callback_data, "account", 0))
    if account is None:
        await query.message.answer(t(lang, "accounts.gone"))
        return
    await request_switch(
        query.message, state, user, lang, storage, watchers, Environment(callback_data.env),
        account,
    )


async def _account(storage: Storage, user: UserRecord, account_id: int) -> AccountRecord | None:
    """The user's account `account_id` (0: the default)."""
    if not account_id:
        return await storage.accounts.default(user.id)
    found = await storage.accounts.get(account_id)
    return found if found is not None and found.user_id == user.id else None


async def request_switch(
    message: Message,
    state: FSMContext,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    watchers: WatcherSupervisor,
    env: Environment,
    account: AccountRecord,
) -> None:
    label = env_label(lang, env.value)
    several = len(await storage.accounts.for_user(user.id)) > 1
    if account.active_environment is env:
        await message.answer(
            t(lang, "mode.account_already", name=account.name, env=label) if several
            else t(lang, "mode.already", env=label)
        )
        return
    keys = await storage.key_sets.get(user.id, env, account_id=account.id)
    if env is Environment.REAL:
        if keys is None or not keys.validated:
            await message.answer(t(lang, "mode.real_needs_keys"))
            return
        await state.clear()
        await state.set_state(Confirm.code)
        await state.update_data(purpose=PURPOSE_REAL, account=account.id)
        await send_code(message, storage, user, PURPOSE_REAL, lang)
        return
    await switch(message, user, lang, storage, watchers, env, account)
    if keys is None:
        await message.answer(t(lang, "mode.paper_no_keys"))


async def switch(
    message: Message,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    watchers: WatcherSupervisor,
    env: Environment,
    account: AccountRecord,
) -> None:
    """Make `env` the account's active one and move the fill-notice watcher with it."""
    await storage.accounts.set_environment(account.id, env)
    await storage.audit.record(user.id, "mode.switched",
                               {"environment": env.value, "account": account.name})
    await watchers.sync(user.id)
    label = env_label(lang, env.value)
    several = len(await storage.accounts.for_user(user.id)) > 1
    await message.answer(
        t(lang, "mode.account_switched", name=account.name, env=label) if several
        else t(lang, "mode.switched", env=label)
    )


async def confirmed_real(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, account_id: int = 0,
) -> None:
    """After the 2FA code: check again (keys may have changed meanwhile), then switch."""
    account = await _account(storage, user, account_id)
    if account is None:
        await message.answer(t(lang, "accounts.gone"))
        return
    keys = await storage.key_sets.get(user.id, Environment.REAL, account_id=account.id)
    if keys is None or not keys.validated:
        await message.answer(t(lang, "mode.real_needs_keys"))
        return
    await switch(message, user, lang, storage, watchers, Environment.REAL, account)


def build_router() -> Router:
    router = Router(name="mode")
    router.message.register(show_mode, Command("mode"))
    router.message.register(paper, Command("paper"))
    router.message.register(real, Command("real"))
    router.callback_query.register(switch_button, ModeSwitch.filter())
    router.callback_query.register(switch_button, AccountModeSwitch.filter())
    return router
