"""`/keys [NAME]`: the account's name → App Key → App Secret → account number → HTS ID →
environment → 2FA → save → checks.

The name (SPEC section 16) picks which of the user's accounts the keys are for; a new
name makes a new account. The first registration offers `main`, and names the user's
one empty account when another name is given.
"""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.checks import CheckReport, render_checklist
from bot.dashboard import offer_dashboard
from bot.formatting import env_label
from bot.keyboards import AccountPick, EnvChoice, account_pick_keyboard, env_keyboard
from bot.states import KeyFlow
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_KEYS, CodeCheck, check_code, send_code
from bot.watchers import WatcherSupervisor
from kis.env import Environment
from kis.keycheck import FillProbe, KeyChecker
from kis.models import (
    Account,
    AppCredentials,
    looks_like_app_key,
    looks_like_app_secret,
    looks_like_hts_id,
)
from kis.secret import Secret, mask
from storage.account_names import MAX_NAME_CHARS, AccountNameError, normalize_account_name
from storage.facade import Storage
from storage.records import AccountRecord, UserRecord
from storage.repositories.accounts import AccountNameTaken

log = logging.getLogger(__name__)


async def start_keys(
    message: Message, state: FSMContext, lang: Lang, public_url: str, user: UserRecord,
    storage: Storage, command: CommandObject | None = None,
) -> None:
    await state.clear()
    await offer_dashboard(message, lang, public_url)
    given = (command.args or "").strip() if command is not None else ""
    if given:
        try:
            name = normalize_account_name(given)
        except AccountNameError as exc:
            await message.answer(t(lang, "keys.bad_name", reason=str(exc)))
        else:
            await _named(message, state, lang, name)
            return
    accounts = await storage.accounts.for_user(user.id)
    default = next((a.name for a in accounts if a.is_default), "main")
    if not await storage.key_sets.for_user(user.id):
        # The first keys: for the one account there is (`main`), unless named otherwise
        # (`/keys NAME`, or a name sent instead of the App Key).
        await _named(message, state, lang, default, first=True)
        return
    await state.set_state(KeyFlow.name)
    await state.update_data(offered=default)
    await message.answer(
        t(lang, "keys.ask_name"), reply_markup=account_pick_keyboard([a.name for a in accounts])
    )


async def _named(
    message: Message, state: FSMContext, lang: Lang, name: str, *, first: bool = False
) -> None:
    await state.update_data(account=name)
    await state.set_state(KeyFlow.app_key)
    await message.answer(t(lang, "keys.first_account" if first else "keys.for_account",
                           account=name))
    await message.answer(t(lang, "keys.ask_app_key"))


async def got_name(message: Message, state: FSMContext, lang: Lang) -> None:
    text = (message.text or "").strip()
    if len(text) > MAX_NAME_CHARS and looks_like_app_key(text):
        # The App Key, sent where the name was asked (SPEC section 5's order): for the
        # account offered, and the message goes like any secret's.
        offered = str((await state.get_data()).get("offered") or "main")
        await _delete_secret(message, lang, "keys.what_app_key")
        await state.update_data(account=offered, app_key=text)
        await state.set_state(KeyFlow.app_secret)
        await message.answer(t(lang, "keys.key_as_name", account=offered))
        await message.answer(t(lang, "keys.ask_app_secret"))
        return
    try:
        name = normalize_account_name(text)
    except AccountNameError as exc:
        await message.answer(t(lang, "keys.bad_name", reason=str(exc)))
        return
    await _named(message, state, lang, name)


def _as_name(text: str) -> str | None:
    """`text` as an account name when it can be one and cannot be an App Key."""
    if len(text) > MAX_NAME_CHARS or looks_like_app_key(text):
        return None
    try:
        return normalize_account_name(text)
    except AccountNameError:
        return None


async def name_button(
    query: CallbackQuery, callback_data: AccountPick, state: FSMContext, lang: Lang
) -> None:
    await query.answer()
    message = query.message
    if not isinstance(message, Message):
        return
    try:
        name = normalize_account_name(callback_data.name)
    except AccountNameError:
        return
    await message.edit_reply_markup(reply_markup=None)
    await _named(message, state, lang, name)


async def _delete_secret(message: Message, lang: Lang, what: str) -> None:
    """Delete a message that may carry a secret, and say so (or ask the user to)."""
    try:
        await message.delete()
    except TelegramAPIError:
        await message.answer(t(lang, "keys.secret_not_deleted", what=t(lang, what)))
        return
    await message.answer(t(lang, "keys.secret_deleted", what=t(lang, what)))


async def got_app_key(message: Message, state: FSMContext, lang: Lang) -> None:
    text = (message.text or "").strip()
    late_name = _as_name(text)
    if late_name is not None:  # a short account name is no secret: the account, then
        await _named(message, state, lang, late_name)
        return
    # Whatever arrived here may be the secret: it goes before anything else happens.
    await _delete_secret(message, lang, "keys.what_app_key")
    if not looks_like_app_key(text):
        await message.answer(t(lang, "keys.bad_app_key"))
        return
    await state.update_data(app_key=text)
    await state.set_state(KeyFlow.app_secret)
    await message.answer(t(lang, "keys.ask_app_secret"))


async def got_app_secret(message: Message, state: FSMContext, lang: Lang) -> None:
    text = (message.text or "").strip()
    await _delete_secret(message, lang, "keys.what_app_secret")
    if not looks_like_app_secret(text):
        await message.answer(t(lang, "keys.bad_app_secret"))
        return
    await state.update_data(app_secret=text)
    await state.set_state(KeyFlow.account)
    await message.answer(t(lang, "keys.ask_account"))


async def got_account(message: Message, state: FSMContext, lang: Lang) -> None:
    try:
        account = Account.parse(message.text or "")
    except ValueError:
        await message.answer(t(lang, "keys.bad_account"))
        return
    await state.update_data(cano=account.cano, product_code=account.product_code)
    await state.set_state(KeyFlow.hts_id)
    await message.answer(t(lang, "keys.ask_hts_id"))


async def got_hts_id(message: Message, state: FSMContext, lang: Lang) -> None:
    text = (message.text or "").strip()
    if not looks_like_hts_id(text):
        await message.answer(t(lang, "keys.bad_hts_id"))
        return
    await state.update_data(hts_id=text)
    await state.set_state(KeyFlow.env)
    await message.answer(t(lang, "keys.ask_env"), reply_markup=env_keyboard())


async def env_by_text(message: Message, lang: Lang) -> None:
    await message.answer(t(lang, "keys.press_button"), reply_markup=env_keyboard())


async def got_env(
    query: CallbackQuery,
    callback_data: EnvChoice,
    state: FSMContext,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
) -> None:
    env = Environment(callback_data.env) if callback_data.env in ("paper", "real") else None
    await query.answer()
    message = query.message
    if env is None or not isinstance(message, Message):
        return
    await state.update_data(env=env.value)
    await state.set_state(KeyFlow.code)
    # The buttons go away: the choice is made (and shown).
    await message.edit_text(t(lang, "keys.env_chosen", env=env_label(lang, env.value)))
    data = await state.get_data()
    summary = t(lang, "keys.summary", app_key=mask(str(data["app_key"])),
                app_secret=mask(str(data["app_secret"])),
                account=f"{data['cano']}-{data['product_code']}",
                hts_id=str(data["hts_id"]), env=env_label(lang, env.value))
    if data.get("account"):
        summary += "\n" + t(lang, "keys.summary_account", name=str(data["account"]))
    await message.answer(summary)
    await send_code(message, storage, user, PURPOSE_KEYS, lang)


async def got_code(
    message: Message,
    state: FSMContext,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    keychecker: KeyChecker,
    watchers: WatcherSupervisor,
) -> None:
    outcome = await check_code(message, storage, user, PURPOSE_KEYS, lang)
    if outcome is CodeCheck.RETRY:
        return
    data = await state.get_data()
    await state.clear()  # the secrets leave the FSM here, whatever happens next
    if outcome is CodeCheck.OVER:
        return
    env = Environment(str(data["env"]))
    account = Account(cano=str(data["cano"]), product_code=str(data["product_code"]))
    hts_id = str(data["hts_id"])
    creds = AppCredentials(
        app_key=str(data["app_key"]), app_secret=Secret(str(data["app_secret"])), env=env
    )
    try:
        holder = await _account_for(storage, user, str(data.get("account") or ""), env)
    except (AccountNameError, AccountNameTaken) as exc:
        await message.answer(t(lang, "keys.bad_name", reason=str(exc)))
        return
    await storage.key_sets.save(
        user.id, env, app_key=creds.app_key, app_secret=creds.app_secret,
        cano=account.cano, product_code=account.product_code, hts_id=hts_id,
        account_id=holder.id,
    )
    await storage.audit.record(user.id, "keys.saved",
                               {"environment": env.value, "account": holder.name})
    several = len(await storage.accounts.for_user(user.id)) > 1
    await message.answer(
        t(lang, "keys.saved_for", account=holder.name) if several
        else t(lang, "keys.saved_checking")
    )
    await run_checks(
        message, user=user, lang=lang, storage=storage, keychecker=keychecker,
        watchers=watchers, creds=creds, account=account, hts_id=hts_id, holder=holder,
    )


async def _account_for(
    storage: Storage, user: UserRecord, name: str, env: Environment
) -> AccountRecord:
    """The account named `name` (the default when the flow had none: a conversation
    from before accounts existed). A new name makes a new account that starts in the
    keys' environment — except for a user's first keys, which name their one empty
    account instead of adding a second."""
    accounts = await storage.accounts.for_user(user.id)
    default = next(a for a in accounts if a.is_default)
    if not name:
        return default
    wanted = normalize_account_name(name)
    found = next((a for a in accounts if a.name == wanted), None)
    if found is not None:
        return found
    if len(accounts) == 1 and not await storage.key_sets.for_user(user.id):
        return await storage.accounts.rename(default.id, wanted)
    return await storage.accounts.create(user.id, wanted, environment=env)


async def run_checks(
    message: Message,
    *,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    keychecker: KeyChecker,
    watchers: WatcherSupervisor,
    creds: AppCredentials,
    account: Account,
    hts_id: str,
    holder: AccountRecord,
    probe: FillProbe | None = None,
) -> CheckReport:
    """Run the three checks, editing one checklist message as each finishes; record the
    results and move the fill-notice watcher accordingly (`/keys` and `/status` re-check).
    `holder` is the account the keys belong to.

    `probe` defaults to the watchers' subscription probe (a fresh subscription)."""
    wait = round(keychecker.fill_timeout)

    def render(report: CheckReport) -> str:
        return render_checklist(lang, report, account=str(account), hts_id=hts_id,
                                fill_wait_seconds=wait)

    checklist = await message.answer(render(CheckReport(env=creds.env)))
    shown = checklist.text or ""

    async def progress(report: CheckReport) -> None:
        nonlocal shown
        text = render(report)
        if text != shown and not report.done:
            shown = text
            await checklist.edit_text(text)

    report = await keychecker.check(
        creds, account, hts_id,
        probe=probe or (lambda c, h, s: watchers.probe(holder.id, user.chat_id, c, h, s)),
        progress=progress,
    )
    await storage.key_sets.record_checks(user.id, creds.env, report.to_json(), report.ok,
                                         account_id=holder.id)
    await storage.audit.record(
        user.id, "keys.checked",
        {"environment": creds.env.value, "ok": report.ok, "account": holder.name},
    )
    await watchers.sync(user.id)
    final = render(report)
    current = await storage.accounts.get(holder.id)
    active = current.active_environment if current is not None else holder.active_environment
    if report.ok and active is not creds.env:
        final += "\n" + t(lang, "check.active_hint", env=env_label(lang, active.value))
    try:
        await checklist.edit_text(final)
    except TelegramAPIError:
        await message.answer(final)
    return report


def build_router() -> Router:
    router = Router(name="keys")
    router.message.register(start_keys, Command("keys"))
    return router


def build_flow() -> Router:
    router = Router(name="keys-flow")
    router.message.register(got_name, KeyFlow.name)
    router.callback_query.register(name_button, KeyFlow.name, AccountPick.filter())
    router.message.register(got_app_key, KeyFlow.app_key)
    router.message.register(got_app_secret, KeyFlow.app_secret)
    router.message.register(got_account, KeyFlow.account)
    router.message.register(got_hts_id, KeyFlow.hts_id)
    router.message.register(env_by_text, KeyFlow.env)
    router.callback_query.register(got_env, KeyFlow.env, EnvChoice.filter())
    router.message.register(got_code, KeyFlow.code)
    return router
