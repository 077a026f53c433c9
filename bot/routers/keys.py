"""`/keys`: App Key → App Secret → account → HTS ID → environment → 2FA → save → checks."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message

from bot.checks import CheckReport, render_checklist
from bot.dashboard import offer_dashboard
from bot.formatting import env_label
from bot.keyboards import EnvChoice, env_keyboard
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
from storage.facade import Storage
from storage.records import UserRecord

log = logging.getLogger(__name__)


async def start_keys(message: Message, state: FSMContext, lang: Lang, public_url: str) -> None:
    await state.clear()
    await offer_dashboard(message, lang, public_url)
    await state.set_state(KeyFlow.app_key)
    await message.answer(t(lang, "keys.ask_app_key"))


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
    await message.answer(
        t(lang, "keys.summary", app_key=mask(str(data["app_key"])),
          app_secret=mask(str(data["app_secret"])),
          account=f"{data['cano']}-{data['product_code']}",
          hts_id=str(data["hts_id"]), env=env_label(lang, env.value))
    )
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
    await storage.key_sets.save(
        user.id, env, app_key=creds.app_key, app_secret=creds.app_secret,
        cano=account.cano, product_code=account.product_code, hts_id=hts_id,
    )
    await storage.audit.record(user.id, "keys.saved", {"environment": env.value})
    await message.answer(t(lang, "keys.saved_checking"))
    await run_checks(
        message, user=user, lang=lang, storage=storage, keychecker=keychecker,
        watchers=watchers, creds=creds, account=account, hts_id=hts_id,
    )


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
    probe: FillProbe | None = None,
) -> CheckReport:
    """Run the three checks, editing one checklist message as each finishes; record the
    results and move the fill-notice watcher accordingly (`/keys` and `/status` re-check).

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
        probe=probe or (lambda c, h, s: watchers.probe(user.id, user.chat_id, c, h, s)),
        progress=progress,
    )
    await storage.key_sets.record_checks(user.id, creds.env, report.to_json(), report.ok)
    await storage.audit.record(
        user.id, "keys.checked", {"environment": creds.env.value, "ok": report.ok}
    )
    await watchers.sync(user.id)
    final = render(report)
    if report.ok and user.active_environment is not creds.env:
        final += "\n" + t(lang, "check.active_hint",
                          env=env_label(lang, user.active_environment.value))
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
    router.message.register(got_app_key, KeyFlow.app_key)
    router.message.register(got_app_secret, KeyFlow.app_secret)
    router.message.register(got_account, KeyFlow.account)
    router.message.register(got_hts_id, KeyFlow.hts_id)
    router.message.register(env_by_text, KeyFlow.env)
    router.callback_query.register(got_env, KeyFlow.env, EnvChoice.filter())
    router.message.register(got_code, KeyFlow.code)
    return router
