"""`/delete` (2FA): forget the keys of every account of the user (and every account but
the default), revoke and forget their KIS access tokens, and the webhook token."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_DELETE, send_code
from bot.watchers import WatcherSupervisor
from kis.client import KisClient
from kis.tokenstore import CredentialKind
from storage.facade import Storage
from storage.records import UserRecord

log = logging.getLogger(__name__)


async def delete(
    message: Message, state: FSMContext, user: UserRecord, lang: Lang, storage: Storage
) -> None:
    if not await storage.key_sets.for_user(user.id):
        await message.answer(t(lang, "delete.nothing"))
        return
    await state.clear()
    await state.set_state(Confirm.code)
    await state.update_data(purpose=PURPOSE_DELETE)
    await send_code(message, storage, user, PURPOSE_DELETE, lang)


async def confirmed_delete(
    message: Message, user: UserRecord, lang: Lang, storage: Storage,
    watchers: WatcherSupervisor, forget_webhook_token: Callable[[str], None], kis: KisClient,
) -> None:
    await watchers.stop_user(user.id)
    for keys in await storage.key_sets.for_user(user.id):
        creds, _ = keys.kis_access()
        try:  # KIS.md section 15: revoke deliberately, here only; any 2xx is done
            await kis.revoke_token(creds)
        except Exception as exc:  # the keys go regardless; the token expires within a day
            log.warning("revoking the %s access token failed: %s", keys.environment.value,
                        type(exc).__name__)
        app_key = keys.app_key.reveal()
        for kind in CredentialKind:
            with contextlib.suppress(Exception):  # best effort: the keys go regardless
                await storage.tokens.delete(kind, app_key, keys.environment)
    await storage.key_sets.delete_all(user.id)
    await storage.accounts.keep_only_default(user.id)
    # The webhook URL was a credential too: the old one stops working.
    old = await storage.users.webhook_token(user.id)
    await storage.users.rotate_webhook_token(user.id)
    forget_webhook_token(old)
    await storage.web_sessions.end_all(user.id)  # dashboard sign-ins are tokens too
    await storage.audit.record(user.id, "keys.deleted")
    await message.answer(t(lang, "delete.done"))


def build_router() -> Router:
    router = Router(name="delete")
    router.message.register(delete, Command("delete"))
    return router
