"""Audit log of sensitive actions; details are scrubbed of anything secret-looking."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from sqlalchemy import insert, select
from sqlmodel import col

from kis.secret import Secret, mask
from storage.db import Database
from storage.models import AuditEntry
from storage.records import AuditRecord
from storage.repositories._sql import Clock, require_id
from storage.types import utcnow

_SENSITIVE: Final = re.compile(r"secret|token|password|approval|code|app_?key", re.IGNORECASE)


def scrub(detail: Mapping[str, object]) -> dict[str, object]:
    """Masks values under secret-sounding names and any `Secret`; recurses into dicts."""
    clean: dict[str, object] = {}
    for name, value in detail.items():
        if isinstance(value, Secret):
            clean[name] = value.masked()
        elif isinstance(value, Mapping):
            clean[name] = scrub({str(k): v for k, v in value.items()})
        elif _SENSITIVE.search(name) and value is not None and not isinstance(value, bool):
            clean[name] = mask(str(value))
        else:
            clean[name] = value
    return clean


class Audit:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        user_id: int | None,
        action: str,
        detail: Mapping[str, object] | None = None,
        now: datetime | None = None,
    ) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                insert(AuditEntry).values(
                    user_id=user_id,
                    action=action,
                    detail=None if detail is None else scrub(detail),
                    at=now or self._clock(),
                )
            )

    async def recent(self, user_id: int, limit: int = 50) -> list[AuditRecord]:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(AuditEntry)
                    .where(col(AuditEntry.user_id) == user_id)
                    .order_by(col(AuditEntry.id).desc())
                    .limit(limit)
                )
            ).scalars().all()
        return [
            AuditRecord(
                id=require_id(row.id),
                user_id=row.user_id,
                action=row.action,
                detail=dict(row.detail or {}),
                at=row.at,
            )
            for row in rows
        ]
