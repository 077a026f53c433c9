"""Alerts: durable acceptance with the SPEC's duplicate rule, and their lifecycle."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import insert, select, update
from sqlmodel import col

from storage.db import Database
from storage.models import Alert
from storage.records import OPEN_ALERT_STATUSES, AcceptResult, AlertRecord, AlertStatus
from storage.repositories._sql import LOCK_ALERTS, Clock, require_id, rowcount
from storage.types import utcnow

ID_WINDOW: Final = timedelta(hours=24)  # same `id` field within this → duplicate
BODY_WINDOW: Final = timedelta(seconds=60)  # same body (no `id`) within this → duplicate
_MAX_KEY_CHARS: Final = 200


def body_hash(raw_body: str) -> str:
    return hashlib.sha256(raw_body.encode("utf-8")).hexdigest()


def _key_column(idempotency_key: str) -> str:
    """Long keys are stored by hash so the column stays bounded; equality is preserved."""
    if len(idempotency_key) <= _MAX_KEY_CHARS:
        return idempotency_key
    return "sha256:" + hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()


def _record(row: Alert) -> AlertRecord:
    return AlertRecord(
        id=require_id(row.id),
        user_id=row.user_id,
        received_at=row.received_at,
        raw_body=row.raw_body,
        parsed=row.parsed,
        idempotency_key=row.idempotency_key,
        status=AlertStatus(row.status),
        reason=row.reason,
        updated_at=row.updated_at,
    )


class Alerts:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def accept(
        self,
        user_id: int,
        raw_body: str,
        parsed: Mapping[str, object] | None,
        idempotency_key: str | None,
        now: datetime | None = None,
    ) -> AcceptResult:
        """Stores the alert unless it repeats one already accepted (SPEC section 4).

        The check and the insert are one transaction serialised per user (advisory
        lock on PostgreSQL, the writer lock on SQLite), so concurrent repeats of one
        alert store exactly one.
        """
        now = now or self._clock()
        digest = body_hash(raw_body)
        key = _key_column(idempotency_key) if idempotency_key else None
        if key is not None:
            same = (
                col(Alert.idempotency_key) == key,
                col(Alert.received_at) > now - ID_WINDOW,
            )
        else:
            same = (
                col(Alert.body_hash) == digest,
                col(Alert.received_at) > now - BODY_WINDOW,
            )
        async with self._db.transaction() as session:
            await self._db.lock(session, LOCK_ALERTS, user_id)
            first = (
                await session.execute(
                    select(col(Alert.id))
                    .where(col(Alert.user_id) == user_id, *same)
                    .order_by(col(Alert.id))
                    .limit(1)
                )
            ).scalar_one_or_none()
            if first is not None:
                return AcceptResult(alert_id=first, duplicate=True)
            new_id = (
                await session.execute(
                    insert(Alert)
                    .values(
                        user_id=user_id,
                        received_at=now,
                        raw_body=raw_body,
                        parsed=None if parsed is None else dict(parsed),
                        idempotency_key=key,
                        body_hash=digest,
                        status=AlertStatus.ACCEPTED.value,
                        updated_at=now,
                    )
                    .returning(col(Alert.id))
                )
            ).scalar_one()
        return AcceptResult(alert_id=require_id(new_id), duplicate=False)

    async def get(self, alert_id: int) -> AlertRecord | None:
        async with self._db.session() as session:
            row = await session.get(Alert, alert_id)
            return None if row is None else _record(row)

    async def claim(self, alert_id: int) -> AlertRecord | None:
        """accepted → processing; None if someone else claimed it or it is not open."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Alert)
                .where(
                    col(Alert.id) == alert_id,
                    col(Alert.status) == AlertStatus.ACCEPTED.value,
                )
                .values(status=AlertStatus.PROCESSING.value, updated_at=self._clock())
            )
            if rowcount(result) == 0:
                return None
            row = await session.get(Alert, alert_id)
            return None if row is None else _record(row)

    async def claim_next(self) -> AlertRecord | None:
        """Claims the oldest accepted alert, if any."""
        while True:
            async with self._db.session() as session:
                alert_id = (
                    await session.execute(
                        select(col(Alert.id))
                        .where(col(Alert.status) == AlertStatus.ACCEPTED.value)
                        .order_by(col(Alert.id))
                        .limit(1)
                    )
                ).scalar_one_or_none()
            if alert_id is None:
                return None
            claimed = await self.claim(alert_id)
            if claimed is not None:
                return claimed

    async def mark_done(self, alert_id: int, reason: str | None = None) -> None:
        await self._finish(alert_id, AlertStatus.DONE, reason)

    async def mark_refused(self, alert_id: int, reason: str) -> None:
        await self._finish(alert_id, AlertStatus.REFUSED, reason)

    async def mark_failed(self, alert_id: int, reason: str) -> None:
        await self._finish(alert_id, AlertStatus.FAILED, reason)

    async def unprocessed(self) -> list[AlertRecord]:
        """Accepted or claimed but not finished, oldest first (crash recovery)."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Alert)
                    .where(col(Alert.status).in_([s.value for s in OPEN_ALERT_STATUSES]))
                    .order_by(col(Alert.id))
                )
            ).scalars().all()
        return [_record(row) for row in rows]

    async def recent(self, user_id: int, limit: int = 20) -> list[AlertRecord]:
        """Newest first (`/log`)."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Alert)
                    .where(col(Alert.user_id) == user_id)
                    .order_by(col(Alert.id).desc())
                    .limit(limit)
                )
            ).scalars().all()
        return [_record(row) for row in rows]

    async def _finish(self, alert_id: int, status: AlertStatus, reason: str | None) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(Alert)
                .where(col(Alert.id) == alert_id)
                .values(status=status.value, reason=reason, updated_at=self._clock())
            )
