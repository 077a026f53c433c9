"""The notification outbox: Telegram messages that survive restarts and retries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import col

from storage.db import Database
from storage.models import OutboxItem
from storage.records import OutboxMessage, OutboxStatus
from storage.repositories._sql import (
    Clock,
    insert_ignoring,
    insert_ignoring_by_column,
    require_id,
)
from storage.types import utcnow

_MAX_ERROR_CHARS: Final = 500
OUTBOX_COLUMNS: Final = (
    "user_id", "chat_id", "kind", "payload", "dedupe_key", "status", "attempts",
    "next_attempt_at", "created_at",
)
_INSERTS: dict[str, ReturningInsert[int | None]] = {}


def outbox_insert(dialect: str) -> ReturningInsert[int | None]:
    """INSERT of a pending row unless its dedupe key is queued; parameters by column
    (`entry_values`, keys `OUTBOX_COLUMNS`), the new id returned."""
    statement = _INSERTS.get(dialect)
    if statement is None:
        statement = _INSERTS[dialect] = insert_ignoring_by_column(
            dialect, OutboxItem, OUTBOX_COLUMNS, ["dedupe_key"]
        ).returning(col(OutboxItem.id))
    return statement


# Prebuilt updates, run by `Database.write_one` in one trip. Parameter names are not
# column names, so compiling them adds no SET clause of their own.
_MARK_SENT: Final = (
    update(OutboxItem)
    .where(col(OutboxItem.id) == bindparam("p_id"))
    .values(
        status=OutboxStatus.SENT.value,
        sent_at=bindparam("p_now", type_=OutboxItem.__table__.c["sent_at"].type),  # type: ignore[attr-defined]  # SQLModel table
        attempts=col(OutboxItem.attempts) + 1,
    )
)
_RETRY_LATER: Final = (
    update(OutboxItem)
    .where(col(OutboxItem.id) == bindparam("p_id"))
    .values(
        attempts=col(OutboxItem.attempts) + 1,
        last_error=bindparam("p_error"),
        next_attempt_at=bindparam(
            "p_retry_at", type_=OutboxItem.__table__.c["next_attempt_at"].type  # type: ignore[attr-defined]  # SQLModel table
        ),
    )
)
_GIVE_UP: Final = (
    update(OutboxItem)
    .where(col(OutboxItem.id) == bindparam("p_id"))
    .values(
        attempts=col(OutboxItem.attempts) + 1,
        last_error=bindparam("p_error"),
        status=OutboxStatus.FAILED.value,
    )
)


def entry_values(
    user_id: int | None, entry: OutboxEntry, payload: dict[str, object], now: datetime
) -> dict[str, object]:
    return {
        "user_id": user_id,
        "chat_id": entry.chat_id,
        "kind": entry.kind,
        "payload": payload,
        "dedupe_key": entry.dedupe_key,
        "status": OutboxStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def pending_message(
    new_id: int, user_id: int | None, entry: OutboxEntry, payload: dict[str, object],
    now: datetime,
) -> OutboxMessage:
    """The row just inserted, as the notifier will see it (no re-read)."""
    return OutboxMessage(
        id=new_id,
        user_id=user_id,
        chat_id=entry.chat_id,
        kind=entry.kind,
        payload=payload,
        dedupe_key=entry.dedupe_key,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error=None,
        created_at=now,
        sent_at=None,
    )


def _record(row: OutboxItem) -> OutboxMessage:
    return OutboxMessage(
        id=require_id(row.id),
        user_id=row.user_id,
        chat_id=row.chat_id,
        kind=row.kind,
        payload=row.payload,
        dedupe_key=row.dedupe_key,
        status=OutboxStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A chat message to queue: what `Outbox.add` takes, also inside another
    repository's transaction (`insert_entry`)."""

    chat_id: int
    kind: str
    payload: Mapping[str, object]
    dedupe_key: str


async def insert_entry(
    dialect: str, session: AsyncSession, user_id: int | None, entry: OutboxEntry, now: datetime
) -> OutboxMessage | None:
    """Inserts the entry in the caller's transaction unless its dedupe key is queued
    already; the new row as the notifier will see it, or None for a repeat.

    Built from the inserted values and the new id, so sending it needs no re-read."""
    payload = dict(entry.payload)
    new_id = (
        await session.execute(
            insert_ignoring(
                dialect, OutboxItem, entry_values(user_id, entry, payload, now), ["dedupe_key"]
            )
            .returning(col(OutboxItem.id))
        )
    ).scalar_one_or_none()
    if new_id is None:
        return None
    return pending_message(new_id, user_id, entry, payload, now)


class Outbox:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def add(
        self,
        user_id: int | None,
        chat_id: int,
        kind: str,
        payload: Mapping[str, object],
        dedupe_key: str,
        now: datetime | None = None,
        *,
        urgent: bool = False,
    ) -> OutboxMessage | None:
        """Queues a message once per `dedupe_key`: the new row (hand it to the notifier
        as it is), or None if it was queued before.

        One prebuilt statement in one database trip; `urgent` (a chat notice someone
        waits for) queues it ahead of other writers waiting on SQLite."""
        entry = OutboxEntry(chat_id, kind, payload, dedupe_key)
        now = now or self._clock()
        payload = dict(payload)
        values = entry_values(user_id, entry, payload, now)
        inserted = await self._db.write_one(
            outbox_insert(self._db.dialect), values, urgent=urgent
        )
        if not inserted:
            return None
        return pending_message(require_id(inserted[0][0]), user_id, entry, payload, now)

    async def enqueue(
        self,
        user_id: int | None,
        chat_id: int,
        kind: str,
        payload: Mapping[str, object],
        dedupe_key: str,
        now: datetime | None = None,
    ) -> bool:
        """Queues a message once per `dedupe_key`; False if it was queued before."""
        return await self.add(user_id, chat_id, kind, payload, dedupe_key, now) is not None

    async def due(self, limit: int = 100, now: datetime | None = None) -> list[OutboxMessage]:
        """Pending messages whose time has come, oldest first."""
        now = now or self._clock()
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(OutboxItem)
                    .where(
                        col(OutboxItem.status) == OutboxStatus.PENDING.value,
                        col(OutboxItem.next_attempt_at) <= now,
                    )
                    .order_by(col(OutboxItem.id))
                    .limit(limit)
                )
            ).scalars().all()
        return [_record(row) for row in rows]

    async def claim_due(
        self, holder: str, epoch: int, limit: int = 100, now: datetime | None = None
    ) -> list[OutboxMessage]:
        """`due`, taken by the Telegram lease holder `holder` under `epoch` (several
        instances): rows locked by a concurrent claimer are skipped, never taken twice
        at once. On SQLite (one process) this is `due`."""
        if self._db.is_sqlite:
            return await self.due(limit, now)
        now = now or self._clock()
        due = (
            select(col(OutboxItem.id))
            .where(
                col(OutboxItem.status) == OutboxStatus.PENDING.value,
                col(OutboxItem.next_attempt_at) <= now,
            )
            .order_by(col(OutboxItem.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._db.transaction() as session:
            rows = (
                await session.execute(
                    update(OutboxItem)
                    .where(col(OutboxItem.id).in_(due.scalar_subquery()))
                    .values(claimed_by=holder, claim_epoch=epoch)
                    .returning(OutboxItem)
                    .execution_options(synchronize_session=False)
                )
            ).scalars().all()
        return sorted((_record(row) for row in rows), key=lambda m: m.id)

    async def mark_sent(self, message_id: int, now: datetime | None = None) -> None:
        await self._db.write_one(_MARK_SENT, {"p_id": message_id, "p_now": now or self._clock()})

    async def mark_failed(
        self, message_id: int, error: str, retry_at: datetime | None
    ) -> None:
        """Records a failed attempt; retried at `retry_at`, or given up when it is None."""
        params: dict[str, object] = {"p_id": message_id, "p_error": error[:_MAX_ERROR_CHARS]}
        if retry_at is None:
            await self._db.write_one(_GIVE_UP, params)
        else:
            await self._db.write_one(_RETRY_LATER, {**params, "p_retry_at": retry_at})

    async def has(self, dedupe_key: str) -> bool:
        """Whether a message with this dedupe key was ever queued (sent or not)."""
        async with self._db.session() as session:
            found = (
                await session.execute(
                    select(col(OutboxItem.id)).where(col(OutboxItem.dedupe_key) == dedupe_key)
                )
            ).first()
        return found is not None

    async def pending_count(self) -> int:
        async with self._db.session() as session:
            return int(
                (
                    await session.execute(
                        select(func.count())
                        .select_from(OutboxItem)
                        .where(col(OutboxItem.status) == OutboxStatus.PENDING.value)
                    )
                ).scalar_one()
            )
