"""Confirm mode: an alert waits for ✅ / ❌ in the chat; every decision is one atomic
state change (pending → confirmed | skipped | expired), so two presses, two devices or
a press racing the expiry decide it exactly once.

Confirming puts the alert back to `accepted`: the pipeline then places its order (a
restart finds it like any other unprocessed alert). Skipping or expiring closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.db import Database
from storage.models import AccountRow, Alert, Confirmation, User
from storage.portfolio_notices import ConfirmExpired, card_payload, subject_from_alert
from storage.portfolio_records import (
    ConfirmationRecord,
    ConfirmationStatus,
    DecideOutcome,
    DecideResult,
)
from storage.records import AlertStatus, OutboxMessage
from storage.repositories._sql import Clock, insert_ignoring, require_id, rowcount
from storage.repositories.alerts import finish_in
from storage.repositories.outbox import OutboxEntry, insert_entry
from storage.types import utcnow

SKIPPED_REASON = "skipped in the chat (confirm mode)"


def expired_reason(seconds: int) -> str:
    return f"not confirmed within {seconds} s (confirm mode)"


def _record(row: Confirmation) -> ConfirmationRecord:
    return ConfirmationRecord(
        id=require_id(row.id),
        alert_id=row.alert_id,
        user_id=row.user_id,
        chat_id=row.chat_id,
        status=ConfirmationStatus(row.status),
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        message_id=row.message_id,
        created_at=row.created_at,
    )


def expiry_dedupe(confirmation_id: int) -> str:
    return f"confirm_expired:{confirmation_id}"


class Confirmations:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def ask(
        self,
        *,
        alert_id: int,
        user_id: int,
        chat_id: int,
        seconds: int,
        notice: Callable[[int], OutboxEntry],
    ) -> OutboxMessage | None:
        """Record the question (answerable for `seconds`), park the alert (`awaiting`)
        and queue the chat message built by `notice(confirmation_id)` — one
        transaction. None when this alert was asked about before (nothing changes)."""
        now = self._clock()
        expires_at = now + timedelta(seconds=seconds)
        async with self._db.transaction() as session:
            new_id = (
                await session.execute(
                    insert_ignoring(
                        self._db.dialect,
                        Confirmation,
                        {
                            "alert_id": alert_id, "user_id": user_id, "chat_id": chat_id,
                            "status": ConfirmationStatus.PENDING.value,
                            "expires_at": expires_at, "created_at": now,
                        },
                        ["alert_id"],
                    ).returning(col(Confirmation.id))
                )
            ).scalar_one_or_none()
            if new_id is None:
                return None
            await finish_in(session, alert_id, AlertStatus.AWAITING, None, now)
            return await insert_entry(self._db.dialect, session, user_id, notice(new_id), now)

    async def get(self, confirmation_id: int) -> ConfirmationRecord | None:
        async with self._db.session() as session:
            row = await session.get(Confirmation, confirmation_id)
            return None if row is None else _record(row)

    async def by_alert(self, alert_id: int) -> ConfirmationRecord | None:
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(Confirmation).where(col(Confirmation.alert_id) == alert_id)
                )
            ).scalar_one_or_none()
            return None if row is None else _record(row)

    async def decide(
        self, confirmation_id: int, user_id: int, decision: ConfirmationStatus
    ) -> DecideResult:
        """The user pressed ✅ (CONFIRMED) or ❌ (SKIPPED). Only a pending, unexpired
        confirmation of this user changes; the first press wins."""
        if decision not in (ConfirmationStatus.CONFIRMED, ConfirmationStatus.SKIPPED):
            raise ValueError("a press confirms or skips")
        now = self._clock()
        async with self._db.transaction() as session:
            changed = await session.execute(
                update(Confirmation)
                .where(
                    col(Confirmation.id) == confirmation_id,
                    col(Confirmation.user_id) == user_id,
                    col(Confirmation.status) == ConfirmationStatus.PENDING.value,
                    col(Confirmation.expires_at) > now,
                )
                .values(status=decision.value, decided_at=now)
            )
            row = await session.get(Confirmation, confirmation_id, populate_existing=True)
            if rowcount(changed) == 1 and row is not None:
                if decision is ConfirmationStatus.CONFIRMED:
                    await session.execute(
                        update(Alert)
                        .where(
                            col(Alert.id) == row.alert_id,
                            col(Alert.status) == AlertStatus.AWAITING.value,
                        )
                        .values(status=AlertStatus.ACCEPTED.value, updated_at=now)
                    )
                else:
                    await finish_in(session, row.alert_id, AlertStatus.REFUSED,
                                    SKIPPED_REASON, now)
                return DecideResult(DecideOutcome.DECIDED, _record(row))
        if row is None or row.user_id != user_id:
            return DecideResult(DecideOutcome.UNKNOWN, None)
        record = _record(row)
        if record.status is ConfirmationStatus.PENDING:  # its time is up: expire it now
            expired, queued = await self.expire(confirmation_id)
            return DecideResult(DecideOutcome.EXPIRED, expired or record, queued)
        if record.status is ConfirmationStatus.EXPIRED:
            return DecideResult(DecideOutcome.EXPIRED, record)
        return DecideResult(DecideOutcome.ALREADY, record)

    async def expire(
        self, confirmation_id: int
    ) -> tuple[ConfirmationRecord | None, OutboxMessage | None]:
        """Expire a pending confirmation whose time is up: the alert is closed and the
        expiry is queued for the chat, once. (None, None) if it was decided already."""
        now = self._clock()
        async with self._db.transaction() as session:
            changed = await session.execute(
                update(Confirmation)
                .where(
                    col(Confirmation.id) == confirmation_id,
                    col(Confirmation.status) == ConfirmationStatus.PENDING.value,
                    col(Confirmation.expires_at) <= now,
                )
                .values(status=ConfirmationStatus.EXPIRED.value, decided_at=now)
            )
            if rowcount(changed) != 1:
                return None, None
            row = await session.get(Confirmation, confirmation_id, populate_existing=True)
            assert row is not None
            record = _record(row)
            seconds = max(0, round((record.expires_at - record.created_at).total_seconds()))
            await finish_in(session, record.alert_id, AlertStatus.REFUSED,
                            expired_reason(seconds), now)
            queued = await insert_entry(
                self._db.dialect, session, record.user_id,
                await self._expiry_entry(session, record), now,
            )
        return record, queued

    async def _expiry_entry(
        self, session: AsyncSession, record: ConfirmationRecord
    ) -> OutboxEntry:
        alert = await session.get(Alert, record.alert_id)
        user = await session.get(User, record.user_id)
        env = user.active_environment if user is not None else ""
        label = ""
        account = None
        if alert is not None and alert.account_id is not None:
            account = await session.get(AccountRow, alert.account_id)
        if account is not None:
            env = account.active_environment
            several = (await session.execute(
                select(func.count()).where(col(AccountRow.user_id) == record.user_id)
            )).scalar_one() > 1
            label = account.name if several else ""
        card = ConfirmExpired(
            record.id, subject_from_alert(alert.parsed if alert else None, env, label)
        )
        return OutboxEntry(record.chat_id, card.kind.value, card_payload(card),
                           expiry_dedupe(record.id))

    async def due(self, limit: int = 100) -> list[int]:
        """Pending confirmations whose time is up, oldest first."""
        now = self._clock()
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(col(Confirmation.id))
                    .where(
                        col(Confirmation.status) == ConfirmationStatus.PENDING.value,
                        col(Confirmation.expires_at) <= now,
                    )
                    .order_by(col(Confirmation.expires_at))
                    .limit(limit)
                )
            ).scalars().all()
        return [require_id(value) for value in rows]

    async def next_expiry(self) -> datetime | None:
        async with self._db.session() as session:
            return (
                await session.execute(
                    select(func.min(col(Confirmation.expires_at))).where(
                        col(Confirmation.status) == ConfirmationStatus.PENDING.value
                    )
                )
            ).scalar_one_or_none()

    async def set_message(self, confirmation_id: int, message_id: int) -> None:
        """The chat message that asks (its buttons are removed when it expires)."""
        async with self._db.transaction() as session:
            await session.execute(
                update(Confirmation)
                .where(col(Confirmation.id) == confirmation_id)
                .values(message_id=message_id)
            )
