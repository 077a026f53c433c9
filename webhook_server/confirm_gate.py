"""Confirm mode (SPEC section 15) on the order path: instead of ordering, the pipeline
asks in the chat (✅ Place / ❌ Skip) and parks the alert. The press is handled by the
bot, which records the decision and wakes the pipeline; the alert then comes back here
and, confirmed, goes on to be sized with fresh figures and placed.
"""

from __future__ import annotations

from storage.facade import Storage
from storage.portfolio_notices import ConfirmRequest, card_payload, subject_from_alert
from storage.portfolio_records import ConfirmationRecord
from storage.records import OutboxMessage
from storage.repositories.outbox import OutboxEntry
from webhook_server.alert import Alert
from webhook_server.db_gate import DbGate


def request_dedupe(confirmation_id: int) -> str:
    return f"confirm_request:{confirmation_id}"


class ConfirmGate:
    def __init__(self, storage: Storage, db: DbGate) -> None:
        self._storage = storage
        self._db = db

    async def decision(self, alert_id: int) -> ConfirmationRecord | None:
        """What became of the question about this alert, if it was asked."""
        return await self._db(self._storage.confirmations.by_alert(alert_id))

    async def ask(
        self, *, alert_id: int, user_id: int, chat_id: int, env: str, seconds: int,
        alert: Alert, account: str = "",
    ) -> OutboxMessage | None:
        """Ask in the chat and park the alert; the queued message (None if asked before).
        `account`: the account's name, when the user has several."""
        subject = subject_from_alert(alert.to_json(), env, account)

        def notice(confirmation_id: int) -> OutboxEntry:
            card = ConfirmRequest(confirmation_id, seconds, subject)
            return OutboxEntry(chat_id, card.kind.value, card_payload(card),
                               request_dedupe(confirmation_id))

        return await self._db(
            self._storage.confirmations.ask(
                alert_id=alert_id, user_id=user_id, chat_id=chat_id, seconds=seconds,
                notice=notice,
            )
        )
