"""Alerts: durable acceptance with the SPEC's duplicate rule, and their lifecycle."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import (
    JSON,
    BigInteger,
    Select,
    String,
    Text,
    bindparam,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import col

from storage.db import Database
from storage.models import Alert
from storage.records import OPEN_ALERT_STATUSES, AcceptResult, AlertRecord, AlertStatus
from storage.repositories._sql import LOCK_ALERTS, Clock, require_id, rowcount
from storage.types import UtcDateTime, utcnow

ID_WINDOW: Final = timedelta(hours=24)  # same `id` field within this → duplicate
BODY_WINDOW: Final = timedelta(seconds=60)  # same body (no `id`) within this → duplicate
_MAX_KEY_CHARS: Final = 200
_MAX_BATCH: Final = 256
_INSERT_COLUMNS: Final = [
    "user_id",
    "received_at",
    "raw_body",
    "parsed",
    "idempotency_key",
    "body_hash",
    "status",
    "updated_at",
]


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


def _earlier(by_key: bool) -> Select[int | None]:
    """Ids of this user's alerts that a new one would repeat (SPEC section 4)."""
    match = col(Alert.idempotency_key) if by_key else col(Alert.body_hash)
    return select(col(Alert.id)).where(
        col(Alert.user_id) == bindparam("user_id"),
        match == bindparam("match"),
        col(Alert.received_at) > bindparam("cutoff", type_=UtcDateTime()),
    )


def _insert_unless_earlier(by_key: bool) -> ReturningInsert[int | None]:
    # One statement on the common path; built once so only parameters change per call.
    source = select(
        bindparam("v_user_id", type_=BigInteger()),
        bindparam("v_now", type_=UtcDateTime()),
        bindparam("v_raw_body", type_=Text()),
        bindparam("v_parsed", type_=JSON()),
        bindparam("v_key", type_=String()),
        bindparam("v_body_hash", type_=String()),
        bindparam("v_status", type_=String()),
        bindparam("v_now", type_=UtcDateTime()),
    ).where(~exists(_earlier(by_key)))
    return insert(Alert).from_select(_INSERT_COLUMNS, source).returning(col(Alert.id))


_INSERT_UNLESS_EARLIER: Final = {flag: _insert_unless_earlier(flag) for flag in (True, False)}
_FIRST_EARLIER: Final = {
    flag: _earlier(flag).order_by(col(Alert.id)).limit(1) for flag in (True, False)
}


@dataclass(slots=True)
class _Pending:
    user_id: int
    raw_body: str
    parsed: dict[str, object] | None
    key: str | None
    now: datetime
    future: asyncio.Future[AcceptResult]


class Alerts:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._queue: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None

    async def accept(
        self,
        user_id: int,
        raw_body: str,
        parsed: Mapping[str, object] | None,
        idempotency_key: str | None,
        now: datetime | None = None,
    ) -> AcceptResult:
        """Stores the alert unless it repeats one already accepted (SPEC section 4).

        Concurrent calls are gathered into one transaction (group commit) in which
        each alert is checked and inserted in turn, serialised per user (the writer
        lock on SQLite, an advisory lock on PostgreSQL): concurrent repeats of one
        alert store exactly one, and a burst of alerts costs one commit.
        """
        pending = _Pending(
            user_id=user_id,
            raw_body=raw_body,
            parsed=None if parsed is None else dict(parsed),
            key=_key_column(idempotency_key) if idempotency_key else None,
            now=now or self._clock(),
            future=asyncio.get_running_loop().create_future(),
        )
        self._queue.append(pending)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="alerts-accept")
        return await asyncio.shield(pending.future)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:_MAX_BATCH]
            del self._queue[:_MAX_BATCH]
            # Same-user order is kept (stable sort); sorting orders the advisory locks.
            batch.sort(key=lambda item: item.user_id)
            try:
                async with self._db.transaction() as session:
                    results = [await self._accept_one(session, item) for item in batch]
            except Exception:  # noqa: BLE001 - one bad alert must not sink the others
                await self._accept_alone(batch)
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    async def _accept_alone(self, batch: list[_Pending]) -> None:
        for item in batch:
            try:
                async with self._db.transaction() as session:
                    result = await self._accept_one(session, item)
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if not item.future.done():
                    item.future.set_exception(exc)
            else:
                if not item.future.done():
                    item.future.set_result(result)

    async def _accept_one(self, session: AsyncSession, item: _Pending) -> AcceptResult:
        digest = body_hash(item.raw_body)
        by_key = item.key is not None
        params: dict[str, object] = {
            "user_id": item.user_id,
            "match": item.key if by_key else digest,
            "cutoff": item.now - (ID_WINDOW if by_key else BODY_WINDOW),
            "v_user_id": item.user_id,
            "v_now": item.now,
            "v_raw_body": item.raw_body,
            "v_parsed": item.parsed,
            "v_key": item.key,
            "v_body_hash": digest,
            "v_status": AlertStatus.ACCEPTED.value,
        }
        await self._db.lock(session, LOCK_ALERTS, item.user_id)
        # Core execution: prebuilt statements, no ORM bulk-insert interpretation.
        conn = await session.connection()
        new_id = (await conn.execute(_INSERT_UNLESS_EARLIER[by_key], params)).scalar()
        if new_id is not None:
            return AcceptResult(alert_id=new_id, duplicate=False)
        first = (await conn.execute(_FIRST_EARLIER[by_key], params)).scalar_one()
        return AcceptResult(alert_id=require_id(first), duplicate=True)

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
