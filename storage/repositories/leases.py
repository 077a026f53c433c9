"""Leases and the instances that hold them (SPEC section 12).

A lease names a piece of work only one instance may do at a time (a KIS app key's
session and orders, the Telegram side). Its holder renews it; a holder that stops
renewing loses it `ttl` seconds after the last renewal, and the next holder gets a
higher `epoch`. Expiry is the database's clock on PostgreSQL, so instances on hosts
whose clocks disagree still agree on who holds what.

A holder is an instance *run* (`Instances.register`): a restarted instance is a new
holder and never mistakes its predecessor's leases for its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage.db import Database
from storage.models import Instance, Lease
from storage.repositories._sql import Clock, rowcount
from storage.types import UtcDateTime, utcnow


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    name: str
    holder: str | None
    epoch: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    id: str
    name: str
    started_at: datetime
    heartbeat_at: datetime
    draining: bool


def _lease(row: Lease) -> LeaseRecord:
    return LeaseRecord(row.name, row.holder, row.epoch, row.expires_at)


def _instance(row: Instance) -> InstanceRecord:
    return InstanceRecord(row.id, row.name, row.started_at, row.heartbeat_at, row.draining)


class _DbTime:
    """The database's clock on PostgreSQL (one clock for every instance), the process's
    on SQLite (one process)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._postgres = db.dialect == "postgresql"
        self._clock = clock

    def now(self) -> ColumnElement[datetime]:
        return self.later(0.0)

    def later(self, seconds: float) -> ColumnElement[datetime]:
        if self._postgres:
            now = func.statement_timestamp()
            return now if seconds == 0 else now + func.make_interval(0, 0, 0, 0, 0, 0, seconds)
        return bindparam(None, self._clock() + timedelta(seconds=seconds), type_=UtcDateTime())


class Leases:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._time = _DbTime(db, clock)

    def _now(self) -> ColumnElement[datetime]:
        return self._time.now()

    def _later(self, seconds: float) -> ColumnElement[datetime]:
        return self._time.later(seconds)

    async def acquire(self, name: str, holder: str, ttl: float) -> int | None:
        """Take `name` if it is free, expired or already `holder`'s; returns the epoch it is
        held under, or None when another holder has it. A lease that changes hands (or
        comes back after it expired or was released) gets a new epoch."""
        now, later = self._now(), self._later(ttl)
        values = {"name": name, "holder": holder, "epoch": 1, "expires_at": later,
                  "acquired_at": now}
        table = Lease.__table__  # type: ignore[attr-defined]  # SQLModel table
        insert = (
            postgresql.insert(table) if self._db.dialect == "postgresql" else sqlite.insert(table)
        ).values(values)
        still_mine = and_(table.c.holder == holder, table.c.expires_at > now)
        statement = insert.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": holder,
                "epoch": case((still_mine, table.c.epoch), else_=table.c.epoch + 1),
                "expires_at": later,
                "acquired_at": case((still_mine, table.c.acquired_at), else_=now),
            },
            where=or_(
                table.c.holder.is_(None), table.c.expires_at <= now, table.c.holder == holder
            ),
        ).returning(table.c.epoch)
        async with self._db.transaction() as session:
            epoch = (await session.execute(statement)).scalar_one_or_none()
        return None if epoch is None else int(epoch)

    async def renew(self, holder: str, ttl: float) -> dict[str, int]:
        """Extend every lease `holder` still holds; returns them (name → epoch). A lease
        missing from the answer was lost (expired and taken, or released)."""
        now, later = self._now(), self._later(ttl)
        async with self._db.transaction() as session:
            rows = (
                await session.execute(
                    update(Lease)
                    .where(col(Lease.holder) == holder, col(Lease.expires_at) > now)
                    .values(expires_at=later)
                    .returning(col(Lease.name), col(Lease.epoch))
                )
            ).all()
        return {str(name): int(epoch) for name, epoch in rows}

    async def release(self, holder: str, names: Iterable[str] | None = None) -> list[str]:
        """Give leases up at once (another instance may take them immediately)."""
        conditions = [col(Lease.holder) == holder]
        if names is not None:
            wanted = list(names)
            if not wanted:
                return []
            conditions.append(col(Lease.name).in_(wanted))
        async with self._db.transaction() as session:
            rows = (
                await session.execute(
                    update(Lease)
                    .where(*conditions)
                    .values(holder=None, expires_at=self._now())
                    .returning(col(Lease.name))
                )
            ).scalars().all()
        return [str(name) for name in rows]

    async def get(self, name: str) -> LeaseRecord | None:
        async with self._db.session() as session:
            row = await session.get(Lease, name)
            return None if row is None else _lease(row)

    async def holders(self, names: Iterable[str] | None = None) -> list[LeaseRecord]:
        """Leases currently held (not expired), optionally only those named."""
        query = select(Lease).where(col(Lease.holder).is_not(None),
                                    col(Lease.expires_at) > self._now())
        if names is not None:
            query = query.where(col(Lease.name).in_(list(names)))
        async with self._db.session() as session:
            rows = (await session.execute(query.order_by(col(Lease.name)))).scalars().all()
        return [_lease(row) for row in rows]

    async def forget_unused(self, keep: Iterable[str]) -> int:
        """Delete free or expired leases not in `keep` (keys no one uses any more)."""
        kept = list(keep)
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(Lease).where(
                    or_(col(Lease.holder).is_(None), col(Lease.expires_at) <= self._now()),
                    col(Lease.name).not_in(kept) if kept else col(Lease.name).is_not(None),
                )
            )
        return rowcount(result)


class Instances:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock
        self._time = _DbTime(db, clock)

    async def register(self, instance_id: str, name: str) -> None:
        now = self._time.now()
        async with self._db.transaction() as session:
            await session.execute(
                insert(Instance).values(
                    id=instance_id, name=name, started_at=now, heartbeat_at=now, draining=False
                )
            )

    async def heartbeat(self, instance_id: str, *, draining: bool = False) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                update(Instance)
                .where(col(Instance.id) == instance_id)
                .values(heartbeat_at=self._time.now(), draining=draining)
            )

    async def live(self, within: float) -> list[InstanceRecord]:
        """Instances that beat within `within` seconds and are not draining, oldest first."""
        cutoff = self._time.later(-within)
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Instance)
                    .where(col(Instance.heartbeat_at) > cutoff, col(Instance.draining).is_(False))
                    .order_by(col(Instance.started_at), col(Instance.id))
                )
            ).scalars().all()
        return [_instance(row) for row in rows]

    async def remove(self, instance_id: str) -> None:
        async with self._db.transaction() as session:
            await session.execute(delete(Instance).where(col(Instance.id) == instance_id))

    async def prune(self, older_than: float) -> int:
        """Forget instances silent for `older_than` seconds (killed ones leave a row)."""
        cutoff = self._time.later(-older_than)
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(Instance).where(col(Instance.heartbeat_at) < cutoff)
            )
        return rowcount(result)
