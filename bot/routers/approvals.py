"""Confirm mode's ✅ Place / ❌ Skip. The press is one atomic decision in the database
(the first press wins, a press after the expiry is too late); a confirmed alert is
handed back to the pipeline through `run_alert`, which places it (sized again with
fresh figures) wherever the pipeline runs."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiogram import Router
from aiogram.types import CallbackQuery

from bot.callbacks import settle
from bot.notifier import Notifier
from bot.portfolio_keyboards import Approval
from bot.texts import Lang, t
from storage.facade import Storage
from storage.portfolio_records import ConfirmationStatus, DecideOutcome
from storage.records import UserRecord

log = logging.getLogger(__name__)

RunAlert = Callable[[int], None]


async def decide(
    query: CallbackQuery, callback_data: Approval, user: UserRecord, lang: Lang,
    storage: Storage, run_alert: RunAlert, notifier: Notifier,
) -> None:
    decision = ConfirmationStatus.CONFIRMED if callback_data.place else ConfirmationStatus.SKIPPED
    result = await storage.confirmations.decide(callback_data.id, user.id, decision)
    if result.outcome is DecideOutcome.DECIDED and result.record is not None:
        if callback_data.place:
            run_alert(result.record.alert_id)
        key = "approval.placing" if callback_data.place else "approval.skipped"
    elif result.outcome is DecideOutcome.EXPIRED:
        if result.queued is not None:
            notifier.wake(result.queued)  # this press found it expired: the report goes now
        key = "approval.expired"
    else:
        await query.answer(t(lang, "approval.already"))
        return
    await query.answer(t(lang, key))
    await settle(query, t(lang, key))


def build_router() -> Router:
    router = Router(name="approvals")
    router.callback_query.register(decide, Approval.filter())
    return router
