"""`/accounts` (SPEC section 16): the user's accounts with their environment and check
state; `/accounts default NAME`, `/accounts rename NAME NEW`, `/accounts delete NAME`
(2FA). A new account is made by `/keys NAME`."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.account_args import account_named
from bot.formatting import env_label
from bot.keyboards import DefaultAccount, default_account_keyboard
from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_ACCOUNT_DELETE, send_code
from bot.views import keys_state
from bot.watchers import WatcherSupervisor
from storage.account_names import AccountNameError
from storage.facade import Storage
from storage.records import AccountRecord, UserRecord
from storage.repositories.accounts import AccountNameTaken, LastAccount, UnknownAccount


async def accounts(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, command: CommandObject | None = None,
) -> None:
    words = ((command.args or "") if command is not None else "").split()
    if not words:
        await _show(message, user, lang, storage)
        return
    action, rest = words[0].lower(), words[1:]
    if action == "default" and len(rest) == 1:
        account = await account_named(message, user, lang, storage, rest[0])
        if account is not None:
            await _make_default(message, user, lang, storage, watchers, account)
    elif action == "rename" and len(rest) == 2:
        account = await account_named(message, user, lang, storage, rest[0])
        if account is not None:
            await _rename(message, user, lang, storage, watchers, account, rest[1])
    elif action == "delete" and len(rest) == 1:
        account = await account_named(message, user, lang, storage, rest[0])
        if account is None:
            return
        if len(await storage.accounts.for_user(user.id)) < 2:
            await message.answer(t(lang, "accounts.delete_last"))
            return
        await state.clear()
        await state.set_state(Confirm.code)
        await state.update_data(purpose=PURPOSE_ACCOUNT_DELETE, account=account.id)
        await message.answer(t(lang, "accounts.delete_code", name=account.name))
        await send_code(message, storage, user, PURPOSE_ACCOUNT_DELETE, lang)
    else:
        await message.answer(t(lang, "accounts.usage"))


async def _show(message: Message, user: UserRecord, lang: Lang, storage: Storage) -> None:
    listed = await storage.accounts.for_user(user.id)
    key_sets = await storage.key_sets.for_user(user.id)
    lines = [t(lang, "accounts.title", count=len(listed))]
    for account in listed:
        keys = next((k for k in key_sets if k.account_id == account.id
                     and k.environment is account.active_environment), None)
        lines.append(t(
            lang, "accounts.line", star="⭐" if account.is_default else "•", name=account.name,
            env=env_label(lang, account.active_environment.value), keys=keys_state(lang, keys),
            number=t(lang, "accounts.number", number=keys.account) if keys else "",
        ))
    lines.append("")
    lines.append(t(lang, "accounts.usage"))
    others = [(a.id, a.name) for a in listed if not a.is_default]
    await message.answer(
        "\n".join(lines),
        reply_markup=default_account_keyboard(lang, others) if others else None,
    )


async def default_button(
    query: CallbackQuery, callback_data: DefaultAccount, user: UserRecord, lang: Lang,
    storage: Storage, watchers: WatcherSupervisor,
) -> None:
    await query.answer()
    message = query.message
    if not isinstance(message, Message):
        return
    account = await storage.accounts.get(callback_data.account)
    if account is None or account.user_id != user.id:
        await message.answer(t(lang, "accounts.gone"))
        return
    await message.edit_reply_markup(reply_markup=None)
    await _make_default(message, user, lang, storage, watchers, account)


async def _make_default(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, account: AccountRecord,
) -> None:
    if account.is_default:
        await message.answer(t(lang, "accounts.already_default", name=account.name))
        return
    try:
        await storage.accounts.set_default(account.id)
    except UnknownAccount:
        await message.answer(t(lang, "accounts.gone"))
        return
    await storage.audit.record(user.id, "account.default", {"account": account.name})
    await watchers.sync(user.id)
    await message.answer(t(lang, "accounts.default_set", name=account.name,
                           env=env_label(lang, account.active_environment.value)))


async def _rename(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, account: AccountRecord, new: str,
) -> None:
    try:
        renamed = await storage.accounts.rename(account.id, new)
    except AccountNameError as exc:
        await message.answer(t(lang, "accounts.bad_name", reason=str(exc)))
        return
    except AccountNameTaken as exc:
        await message.answer(t(lang, "accounts.taken", name=exc.name))
        return
    except UnknownAccount:
        await message.answer(t(lang, "accounts.gone"))
        return
    await storage.audit.record(user.id, "account.renamed",
                               {"from": account.name, "to": renamed.name})
    await watchers.sync(user.id)  # its notices carry the new name
    await message.answer(t(lang, "accounts.renamed", old=account.name, new=renamed.name))


async def confirmed_delete_account(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, account_id: int,
) -> None:
    """After the 2FA code: the account and its keys go; its history stays."""
    account = await storage.accounts.get(account_id)
    if account is None or account.user_id != user.id:
        await message.answer(t(lang, "accounts.gone"))
        return
    try:
        successor = await storage.accounts.delete(account.id)
    except LastAccount:
        await message.answer(t(lang, "accounts.delete_last"))
        return
    except UnknownAccount:
        await message.answer(t(lang, "accounts.gone"))
        return
    await storage.audit.record(user.id, "account.deleted", {"account": account.name})
    await watchers.sync(user.id)
    await message.answer(t(lang, "accounts.deleted", name=account.name))
    if successor is not None:
        await message.answer(t(lang, "accounts.deleted_default", name=successor.name))


def build_router() -> Router:
    router = Router(name="accounts")
    router.message.register(accounts, Command("accounts"))
    router.callback_query.register(default_button, DefaultAccount.filter())
    return router
