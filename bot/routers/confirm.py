"""The 2FA answer for a sensitive action started elsewhere (`/real`, rotate, delete,
raising a risk limit, deleting an account)."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.routers.accounts import confirmed_delete_account
from bot.routers.delete import confirmed_delete
from bot.routers.limits import confirmed_limit
from bot.routers.mode import confirmed_real
from bot.routers.webhook import confirmed_rotate
from bot.states import Confirm
from bot.texts import Lang
from bot.twofactor import (
    PURPOSE_ACCOUNT_DELETE,
    PURPOSE_DELETE,
    PURPOSE_LIMITS,
    PURPOSE_REAL,
    PURPOSE_ROTATE,
    CodeCheck,
    check_code,
)
from bot.watchers import WatcherSupervisor
from kis.client import KisClient
from storage.facade import Storage
from storage.records import UserRecord


async def got_code(
    message: Message,
    state: FSMContext,
    user: UserRecord,
    lang: Lang,
    storage: Storage,
    watchers: WatcherSupervisor,
    public_url: str,
    forget_webhook_token: Callable[[str], None],
    kis: KisClient,
) -> None:
    data = await state.get_data()
    purpose = str(data.get("purpose", ""))
    if purpose not in (PURPOSE_REAL, PURPOSE_ROTATE, PURPOSE_DELETE, PURPOSE_LIMITS,
                       PURPOSE_ACCOUNT_DELETE):
        await state.clear()
        return
    outcome = await check_code(message, storage, user, purpose, lang)
    if outcome is CodeCheck.RETRY:
        return
    await state.clear()
    if outcome is CodeCheck.OVER:
        return
    account = int(str(data.get("account") or 0))
    if purpose == PURPOSE_REAL:
        await confirmed_real(message, user, lang, storage, watchers, account)
    elif purpose == PURPOSE_ACCOUNT_DELETE:
        await confirmed_delete_account(message, user, lang, storage, watchers, account)
    elif purpose == PURPOSE_ROTATE:
        await confirmed_rotate(message, user, lang, storage, public_url, forget_webhook_token)
    elif purpose == PURPOSE_LIMITS:
        await confirmed_limit(message, data, user, lang, storage)
    else:
        await confirmed_delete(message, user, lang, storage, watchers, forget_webhook_token,
                               kis)


def build_router() -> Router:
    router = Router(name="confirm")
    router.message.register(got_code, Confirm.code)
    return router
