"""`/delete` (2FA): forget the user's keys, their KIS tokens, and the webhook token."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from aiogram import Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.states import Confirm
from bot.texts import Lang, t
from bot.twofactor import PURPOSE_DELETE, send_code
from bot.watchers import WatcherSupervisor
from kis.tokenstore import CredentialKind
from storage.facade import Storage
from storage.records import UserRecord


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
    watchers: WatcherSupervisor, forget_webhook_token: Callable[[str], None],
) -> None:
    await watchers.stop_user(user.id)
    for keys in await storage.key_sets.for_user(user.id):
        app_key = keys.app_key.reveal()
        for kind in CredentialKind:
            with contextlib.suppress(Exception):  # best effort: the keys go regardless
                await storage.tokens.delete(kind, app_key, keys.environment)
    await storage.key_sets.delete_all(user.id)
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
