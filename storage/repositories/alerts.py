"""Alerts: durable acceptance with the SPEC's duplicate rule, and their lifecycle."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Row,
    Select,
    String,
    Text,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import ReturningInsert
from sqlmodel import col

from storage.db import Database, Prepared, in_transaction
from storage.models import Alert
from storage.records import (
    OPEN_ALERT_STATUSES,
    AcceptResult,
    AlertRecord,
    AlertStatus,
    OutboxMessage,
    Reason,
)
from storage.repositories._sql import LOCK_ALERTS, Clock, require_id
from storage.repositories.outbox import OutboxEntry, insert_entry
from storage.signals import Signals
from storage.types import UtcDateTime, utcnow

log = logging.getLogger(__name__)

ID_WINDOW: Final = timedelta(hours=24)  # same `id` field within this → duplicate
BODY_WINDOW: Final = timedelta(seconds=60)  # same body (no `id`) within this → duplicate
# Only an alert that led to an order, or may still lead to one, makes a resend a
# duplicate: a refused or failed alert does not block its retry.
BLOCKING_STATUSES: Final = (AlertStatus.ACCEPTED, AlertStatus.PROCESSING, AlertStatus.DONE)
# As SQL literals, not bound parameters: the intake's statements are compiled once for
# the direct SQLite connection, where an expanding IN list cannot be bound.
_BLOCKING: Final[list[ColumnElement[str]]] = [
    literal_column(f"'{status.value}'") for status in BLOCKING_STATUSES
]
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
    "lease",
    "claimed_by",
    "claim_epoch",
    "account_id",
]
JOBS_CHANNEL: Final = "jobs"  # signal: alerts for this lease are waiting


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
        reason_key=row.reason_key,
        reason_params=row.reason_params,
        lease=row.lease,
        account_id=row.account_id,
        parent_id=row.parent_id,
    )


def reason_values(reason: Reason | str | None) -> dict[str, object]:
    """The `reason`, `reason_key` and `reason_params` columns for a reason."""
    if reason is None or isinstance(reason, str):
        return {"reason": reason, "reason_key": None, "reason_params": None}
    return {
        "reason": reason.text,
        "reason_key": reason.key or None,
        "reason_params": dict(reason.params) if reason.key else None,
    }


# What a repeat answers with: the received alert (the parent of one account's row).
_RECEIVED_ID: Final = func.coalesce(col(Alert.parent_id), col(Alert.id))


def _earlier(by_key: bool) -> Select[int | None]:
    """Ids of this user's alerts that a new one would repeat (SPEC section 4): a message
    for several accounts repeats while any of its accounts' rows would block."""
    match = col(Alert.idempotency_key) if by_key else col(Alert.body_hash)
    return select(_RECEIVED_ID).where(
        col(Alert.user_id) == bindparam("user_id"),
        match == bindparam("match"),
        col(Alert.received_at) > bindparam("cutoff", type_=UtcDateTime()),
        col(Alert.status).in_(_BLOCKING),
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
        bindparam("v_lease", type_=String()),
        bindparam("v_claimed_by", type_=String()),
        bindparam("v_claim_epoch", type_=BigInteger()),
        bindparam("v_account_id", type_=BigInteger()),
    ).where(~exists(_earlier(by_key)))
    return insert(Alert).from_select(_INSERT_COLUMNS, source).returning(col(Alert.id))


_INSERT_UNLESS_EARLIER: Final = {flag: _insert_unless_earlier(flag) for flag in (True, False)}
_FIRST_EARLIER: Final = {
    flag: _earlier(flag).order_by(col(Alert.id)).limit(1) for flag in (True, False)
}
# One account's row of a message for several accounts (its received alert stored first).
_INSERT_LEG: Final = insert(Alert).returning(col(Alert.id))
_LEG_KEYS: Final = frozenset({*_INSERT_COLUMNS, "parent_id"})


_EARLIER_KEYS: Final = frozenset({"user_id", "match", "cutoff"})
# A dropped repeat is still recorded (status duplicate), so /log can say so.
_INSERT_DUPLICATE: Final = insert(Alert)
_DUPLICATE_KEYS: Final = frozenset(
    {*_INSERT_COLUMNS, "reason", "reason_key", "reason_params"}
)


@dataclass(frozen=True, slots=True)
class _DirectStep:
    """One alert on the direct SQLite connection: the insert unless it repeats an earlier
    alert, the query for the first such alert, and the record of a dropped repeat."""

    insert_sql: str
    insert_values: tuple[object, ...]
    first_sql: str
    first_values: tuple[object, ...]
    duplicate: Prepared
    item: _Pending
    leg: Prepared


def _accept_steps(conn: sqlite3.Connection, steps: Sequence[_DirectStep]) -> list[AcceptResult]:
    """On the connection's thread: each alert in turn, so a later alert of the batch sees
    the earlier ones exactly as if it had come alone after them."""
    results: list[AcceptResult] = []
    for step in steps:
        inserted = conn.execute(step.insert_sql, step.insert_values).fetchall()
        if inserted:
            alert_id = require_id(inserted[0][0])
            legs = tuple(
                require_id(
                    conn.execute(step.leg.sql, step.leg.positional(values)).fetchall()[0][0]
                )
                for values in step.item.leg_values(alert_id)
            )
            results.append(AcceptResult(alert_id=alert_id, duplicate=False, legs=legs))
            continue
        first = require_id(conn.execute(step.first_sql, step.first_values).fetchall()[0][0])
        conn.execute(
            step.duplicate.sql, step.duplicate.positional(step.item.duplicate_values(first))
        )
        results.append(AcceptResult(alert_id=first, duplicate=True))
    return results


_SEEN: Final = select(
    _RECEIVED_ID,
    col(Alert.user_id),
    col(Alert.idempotency_key),
    col(Alert.body_hash),
    col(Alert.received_at),
)


@dataclass(frozen=True, slots=True)
class AlertLeg:
    """One account's row of a message for several accounts (SPEC section 16): what it
    is parsed as for that account, and, with several instances, the lease of that
    account's KIS key and this instance's claim when it holds it."""

    account_id: int | None  # None: no account of that name (the row is refused)
    parsed: Mapping[str, object] | None
    lease: str | None = None
    claim: tuple[str, int] | None = None


def _status(claim: tuple[str, int] | None) -> str:
    """Claimed at once by an instance that holds its lease: being processed there."""
    return (AlertStatus.PROCESSING if claim else AlertStatus.ACCEPTED).value


def _claim_values(lease: str | None, claim: tuple[str, int] | None) -> dict[str, object]:
    holder, epoch = claim or (None, None)
    return {"lease": lease, "claimed_by": holder, "claim_epoch": epoch}


@dataclass(slots=True)
class _Pending:
    user_id: int
    raw_body: str
    parsed: dict[str, object] | None
    key: str | None
    digest: str
    now: datetime
    future: asyncio.Future[AcceptResult]
    lease: str | None = None
    claim: tuple[str, int] | None = None
    account_id: int | None = None
    legs: tuple[AlertLeg, ...] = ()  # two or more: one row per account besides this one

    @property
    def status(self) -> str:
        if self.legs:
            return AlertStatus.FANNED_OUT.value  # its accounts' rows are acted on
        return _status(self.claim)

    def claim_values(self) -> dict[str, object]:
        return {**_claim_values(self.lease, self.claim), "account_id": self.account_id}

    def leg_values(self, parent_id: int) -> list[dict[str, object]]:
        """The rows of its accounts, once the received alert is `parent_id`: they carry
        its idempotency key and body hash, so a repeat of the message finds them."""
        return [
            {
                "user_id": self.user_id,
                "received_at": self.now,
                "raw_body": "",  # kept once, on the received alert
                "parsed": None if leg.parsed is None else dict(leg.parsed),
                "idempotency_key": self.key,
                "body_hash": self.digest,
                "status": _status(leg.claim),
                "updated_at": self.now,
                **_claim_values(leg.lease, leg.claim),
                "account_id": leg.account_id,
                "parent_id": parent_id,
            }
            for leg in self.legs
        ]

    def params(self) -> dict[str, object]:
        """Parameters of the prebuilt single-alert statements."""
        by_key = self.key is not None
        return {
            "user_id": self.user_id,
            "match": self.key if by_key else self.digest,
            "cutoff": self.now - (ID_WINDOW if by_key else BODY_WINDOW),
            "v_user_id": self.user_id,
            "v_now": self.now,
            "v_raw_body": self.raw_body,
            "v_parsed": self.parsed,
            "v_key": self.key,
            "v_body_hash": self.digest,
            "v_status": self.status,
            **{f"v_{name}": value for name, value in self.claim_values().items()},
        }

    def values(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "received_at": self.now,
            "raw_body": self.raw_body,
            "parsed": self.parsed,
            "idempotency_key": self.key,
            "body_hash": self.digest,
            "status": self.status,
            "updated_at": self.now,
            **self.claim_values(),
        }

    def duplicate_values(self, first_id: int) -> dict[str, object]:
        """The row recording that this alert was dropped as a repeat of `first_id`."""
        reason = Reason(f"a repeat of alert #{first_id}, dropped", "duplicate",
                        {"alert_id": str(first_id)})
        return {**self.values(), "status": AlertStatus.DUPLICATE.value,
                "lease": None, "claimed_by": None, "claim_epoch": None, "account_id": None,
                **reason_values(reason)}


@dataclass(frozen=True, slots=True)
class _Seen:
    """An alert a new one may repeat: stored earlier, or earlier in the same batch."""

    id: int  # negative: -(position + 1) among this batch's inserts
    user_id: int
    key: str | None
    digest: str
    received_at: datetime

    def repeated_by(self, item: _Pending) -> bool:
        if self.user_id != item.user_id:
            return False
        if item.key is not None:
            return self.key == item.key and self.received_at > item.now - ID_WINDOW
        return self.digest == item.digest and self.received_at > item.now - BODY_WINDOW


class Alerts:
    def __init__(
        self, db: Database, clock: Clock = utcnow, signals: Signals | None = None
    ) -> None:
        self._db = db
        self._clock = clock
        self._signals = signals
        self._queue: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None

    async def accept(
        self,
        user_id: int,
        raw_body: str,
        parsed: Mapping[str, object] | None,
        idempotency_key: str | None,
        now: datetime | None = None,
        *,
        lease: str | None = None,
        claim: tuple[str, int] | None = None,
        account_id: int | None = None,
        legs: Sequence[AlertLeg] = (),
    ) -> AcceptResult:
        """Stores the alert unless it repeats one already accepted (SPEC section 4).

        `account_id`: the account its order goes to. With two or more `legs` (a message
        for several accounts), the alert is stored as received (status `fanned_out`)
        and each leg as its own row, all in one transaction; `AcceptResult.legs` are
        their ids, in the legs' order (the rows the pipeline acts on).

        Concurrent calls are gathered into one transaction (group commit): a burst of
        alerts costs one commit, and each caller gets its answer once its batch is
        durable. Within a transaction alerts are serialised per user (the writer lock
        on SQLite, advisory locks on PostgreSQL), and repeats inside one batch are
        recognised too, so concurrent repeats of one alert store exactly one. A lone
        alert is one prebuilt insert-unless-duplicate statement.

        Several instances: `lease` names the KIS key whose owner acts on the alert; with
        `claim` = (holder, epoch) this instance holds that lease and takes the alert at
        once, else the lease's owner is signalled when the alert is stored.
        """
        pending = _Pending(
            user_id=user_id,
            raw_body=raw_body,
            parsed=None if parsed is None else dict(parsed),
            key=_key_column(idempotency_key) if idempotency_key else None,
            digest=body_hash(raw_body),
            now=now or self._clock(),
            future=asyncio.get_running_loop().create_future(),
            lease=None if len(legs) > 1 else lease,
            claim=None if len(legs) > 1 else claim,
            account_id=None if len(legs) > 1 else account_id,
            legs=tuple(legs) if len(legs) > 1 else (),
        )
        self._queue.append(pending)
        if self._drainer is None or self._drainer.done():
            # A fresh context: the batch serves many requests, not the one that started it.
            self._drainer = asyncio.create_task(
                self._drain(), name="alerts-accept", context=contextvars.Context()
            )
        # shield: a caller that gives up must not cancel the write of the whole batch
        return await asyncio.shield(pending.future)

    async def _drain(self) -> None:
        while self._queue:
            batch = self._queue[:_MAX_BATCH]
            del self._queue[:_MAX_BATCH]
            try:
                if self._db.has_direct:
                    results = await self._accept_direct(batch)
                elif len(batch) == 1 and self._db.is_sqlite and not batch[0].legs:
                    results = [await self._accept_single(batch[0])]
                else:
                    # urgent: HTTP answers wait on this; other writers queue behind it
                    async with self._db.transaction(urgent=True) as session:
                        if len(batch) == 1:
                            results = [await self._accept_one(session, batch[0])]
                        else:
                            results = await self._accept_batch(session, batch)
                        await self._signal_owners(session, batch, results)
            except Exception as exc:  # noqa: BLE001 - one bad alert must not sink the others
                # The slow path: worth knowing about when it is not one bad alert.
                log.warning("alert batch of %d failed (%s); storing each on its own",
                            len(batch), type(exc).__name__)
                await self._accept_alone(batch)  # each on its own; errors go to the caller
                continue
            for item, result in zip(batch, results, strict=True):
                if not item.future.done():
                    item.future.set_result(result)

    async def _accept_alone(self, batch: list[_Pending]) -> None:
        for item in batch:
            try:
                async with self._db.transaction(urgent=True) as session:
                    result = await self._accept_one(session, item)
                    await self._signal_owners(session, [item], [result])
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if not item.future.done():
                    item.future.set_exception(exc)
            else:
                if not item.future.done():
                    item.future.set_result(result)

    async def _signal_owners(
        self, session: AsyncSession, batch: Sequence[_Pending], results: Sequence[AcceptResult]
    ) -> None:
        """New alerts for a lease held elsewhere: wake its owner when this commits."""
        leases = sorted({
            lease for item, result in zip(batch, results, strict=True)
            if not result.duplicate
            for lease, claim in (
                [(leg.lease, leg.claim) for leg in item.legs] or [(item.lease, item.claim)]
            )
            if lease is not None and claim is None
        })
        if leases and self._signals is not None:
            await self._signals.notify_many_in(session, JOBS_CHANNEL, leases)

    async def _accept_direct(self, batch: Sequence[_Pending]) -> list[AcceptResult]:
        """SQLite file: the whole batch in one trip to the database's direct connection —
        one transaction of prebuilt insert-unless-repeat statements (a lone alert is one
        autocommit statement). The writer lock orders it against every other write."""
        steps: list[_DirectStep] = []
        duplicate = self._db.prepare(_INSERT_DUPLICATE, _DUPLICATE_KEYS)
        leg = self._db.prepare(_INSERT_LEG, _LEG_KEYS)
        for item in batch:
            by_key = item.key is not None
            params = item.params()
            insert = self._db.prepare(_INSERT_UNLESS_EARLIER[by_key], frozenset(params))
            first = self._db.prepare(_FIRST_EARLIER[by_key], _EARLIER_KEYS)
            steps.append(
                _DirectStep(insert.sql, insert.positional(params), first.sql,
                            first.positional(params), duplicate, item, leg)
            )
        if len(steps) == 1 and not batch[0].legs:
            # autocommit: the repeat's record, if any, is a second commit
            return await self._db.write_direct(lambda conn: _accept_steps(conn, steps),
                                               urgent=True)
        return await self._db.write_direct(
            lambda conn: in_transaction(conn, lambda c: _accept_steps(c, steps)), urgent=True
        )

    async def _accept_single(self, item: _Pending) -> AcceptResult:
        """SQLite, one alert: the insert-unless-repeat statement is the whole transaction
        (the writer lock orders it against every other write), in one database trip."""
        by_key = item.key is not None
        params = item.params()
        inserted = await self._db.write_one(_INSERT_UNLESS_EARLIER[by_key], params, urgent=True)
        if inserted:
            return AcceptResult(alert_id=require_id(inserted[0][0]), duplicate=False)
        async with self._db.transaction(urgent=True) as session:
            conn = await session.connection()
            first = require_id((await conn.execute(_FIRST_EARLIER[by_key], params)).scalar_one())
            await conn.execute(_INSERT_DUPLICATE, [item.duplicate_values(first)])
        return AcceptResult(alert_id=first, duplicate=True)

    async def _accept_one(self, session: AsyncSession, item: _Pending) -> AcceptResult:
        by_key = item.key is not None
        params = item.params()
        await self._db.lock(session, LOCK_ALERTS, item.user_id)
        # Core execution: prebuilt statements, no ORM bulk-insert interpretation.
        conn = await session.connection()
        new_id = (await conn.execute(_INSERT_UNLESS_EARLIER[by_key], params)).scalar()
        if new_id is not None:
            (legs,) = await _insert_legs(conn, [item], [new_id])
            return AcceptResult(alert_id=new_id, duplicate=False, legs=legs)
        first = require_id((await conn.execute(_FIRST_EARLIER[by_key], params)).scalar_one())
        await conn.execute(_INSERT_DUPLICATE, [item.duplicate_values(first)])
        return AcceptResult(alert_id=first, duplicate=True)

    async def _accept_batch(
        self, session: AsyncSession, batch: Sequence[_Pending]
    ) -> list[AcceptResult]:
        """Many alerts in three statements: what they may repeat (one query per rule, each
        on its own index), then one multi-row insert of those that repeat nothing."""
        users = sorted({item.user_id for item in batch})
        for user_id in users:  # in user order: no deadlock between batches on PostgreSQL
            await self._db.lock(session, LOCK_ALERTS, user_id)
        conn = await session.connection()
        keys = {item.key for item in batch if item.key is not None}
        digests = {item.digest for item in batch if item.key is None}
        oldest = min(item.now for item in batch)
        rows: list[Row[int | None, int, str | None, str, datetime]] = []
        for column, values, window in (
            (col(Alert.idempotency_key), keys, ID_WINDOW),
            (col(Alert.body_hash), digests, BODY_WINDOW),
        ):
            if values:
                rows += (
                    await conn.execute(
                        _SEEN.where(
                            col(Alert.user_id).in_(users),
                            column.in_(values),
                            col(Alert.received_at) > oldest - window,
                            col(Alert.status).in_(_BLOCKING),
                        )
                    )
                ).all()
        rows.sort(key=lambda r: require_id(r[0]))  # oldest first: the first alert answers
        seen = [_Seen(require_id(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
        outcome: list[int | _Seen] = []  # position among the inserts, or what it repeats
        fresh: list[_Pending] = []
        for item in batch:
            first = next((s for s in seen if s.repeated_by(item)), None)
            if first is not None:
                outcome.append(first)
                continue
            outcome.append(len(fresh))
            fresh.append(item)
            seen.append(_Seen(-len(fresh), item.user_id, item.key, item.digest, item.now))
        ids: list[int] = []
        if fresh:
            inserted = await conn.execute(
                insert(Alert).returning(col(Alert.id), sort_by_parameter_order=True),
                [item.values() for item in fresh],
            )
            ids = [require_id(new_id) for new_id in inserted.scalars()]
        legs = await _insert_legs(conn, fresh, ids)
        results: list[AcceptResult] = []
        dropped: list[dict[str, object]] = []
        for item, entry in zip(batch, outcome, strict=True):
            if isinstance(entry, int):
                results.append(AcceptResult(alert_id=ids[entry], duplicate=False,
                                            legs=legs[entry]))
                continue
            first_id = ids[-entry.id - 1] if entry.id < 0 else entry.id
            results.append(AcceptResult(alert_id=first_id, duplicate=True))
            dropped.append(item.duplicate_values(first_id))
        if dropped:
            await conn.execute(_INSERT_DUPLICATE, dropped)
        return results

    async def get(self, alert_id: int) -> AlertRecord | None:
        async with self._db.session() as session:
            row = await session.get(Alert, alert_id)
            return None if row is None else _record(row)

    async def mark_done(self, alert_id: int, reason: Reason | str | None = None) -> None:
        await self._finish(alert_id, AlertStatus.DONE, reason)

    async def mark_refused(self, alert_id: int, reason: Reason | str) -> None:
        await self._finish(alert_id, AlertStatus.REFUSED, reason)

    async def mark_failed(self, alert_id: int, reason: Reason | str) -> None:
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

    # -- several instances: who acts on an alert ------------------------------------------

    async def claim(
        self,
        holder: str,
        epoch: int,
        lease: str | None,
        limit: int = 200,
        *,
        stale_after: timedelta | None = None,
    ) -> list[AlertRecord]:
        """The oldest accepted alerts of `lease` (None: alerts no KIS key owns, which any
        instance may refuse), taken for processing by `holder` under `epoch`. Rows
        another instance is taking at the same moment are skipped, never taken twice
        (`FOR UPDATE SKIP LOCKED` on PostgreSQL; one writer on SQLite). `stale_after`:
        also alerts taken that long ago and still not finished (their taker died)."""
        match = col(Alert.lease).is_(None) if lease is None else col(Alert.lease) == lease
        waiting = col(Alert.status) == AlertStatus.ACCEPTED.value
        if stale_after is not None:
            waiting = or_(waiting, and_(
                col(Alert.status) == AlertStatus.PROCESSING.value,
                col(Alert.updated_at) < self._clock() - stale_after,
            ))
        due = (
            select(col(Alert.id))
            .where(waiting, match)
            .order_by(col(Alert.id))
            .limit(limit)
        )
        if not self._db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        return await self._take(due, holder, epoch)

    async def take_over(self, holder: str, epoch: int, lease: str) -> list[AlertRecord]:
        """Every unfinished alert of `lease` not already `holder`'s under `epoch` (those
        its previous owner had taken but not finished, and those waiting), taken for
        processing: what a new owner carries on with, as after a restart."""
        not_mine = or_(
            col(Alert.claimed_by).is_(None),
            col(Alert.claimed_by) != holder,
            col(Alert.claim_epoch) != epoch,
        )
        open_statuses = [s.value for s in OPEN_ALERT_STATUSES]
        due = (
            select(col(Alert.id))
            .where(col(Alert.lease) == lease, col(Alert.status).in_(open_statuses), not_mine)
            .order_by(col(Alert.id))
        )
        if not self._db.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        return await self._take(due, holder, epoch)

    async def _take(
        self, due: Select[int | None], holder: str, epoch: int
    ) -> list[AlertRecord]:
        async with self._db.transaction() as session:
            rows = (
                await session.execute(
                    update(Alert)
                    .where(col(Alert.id).in_(due.scalar_subquery()))
                    .values(status=AlertStatus.PROCESSING.value, claimed_by=holder,
                            claim_epoch=epoch, updated_at=self._clock())
                    .returning(Alert)
                    .execution_options(synchronize_session=False)
                )
            ).scalars().all()
        return sorted((_record(row) for row in rows), key=lambda a: a.id)

    async def release(self, alert_id: int, holder: str, epoch: int) -> bool:
        """Give an alert this holder took back to its lease's owner (this instance lost
        the lease before acting on it); False when it is no longer this holder's."""
        return await self._route(alert_id, holder, epoch, None, keep_lease=True)

    async def reroute(
        self, alert_id: int, holder: str, epoch: int, lease: str | None
    ) -> bool:
        """The alert belongs to another key's owner now (the user's keys or environment
        changed since it was accepted): handed to `lease`, whose owner is signalled."""
        return await self._route(alert_id, holder, epoch, lease, keep_lease=False)

    async def _route(
        self, alert_id: int, holder: str, epoch: int, lease: str | None, *, keep_lease: bool
    ) -> bool:
        values: dict[str, object] = {
            "status": AlertStatus.ACCEPTED.value, "claimed_by": None, "claim_epoch": None,
            "updated_at": self._clock(),
        }
        if not keep_lease:
            values["lease"] = lease
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    update(Alert)
                    .where(
                        col(Alert.id) == alert_id,
                        col(Alert.status) == AlertStatus.PROCESSING.value,
                        col(Alert.claimed_by) == holder,
                        col(Alert.claim_epoch) == epoch,
                    )
                    .values(**values)
                    .returning(col(Alert.lease))
                )
            ).one_or_none()
            if row is None:
                return False
            if row[0] is not None and self._signals is not None:
                await self._signals.notify_in(session, JOBS_CHANNEL, str(row[0]))
        return True

    async def recent(self, user_id: int, limit: int = 20) -> list[AlertRecord]:
        """Newest first (`/log`): a message for several accounts shows as its accounts'
        rows, each with its own outcome."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(Alert)
                    .where(col(Alert.user_id) == user_id,
                           col(Alert.status) != AlertStatus.FANNED_OUT.value)
                    .order_by(col(Alert.id).desc())
                    .limit(limit)
                )
            ).scalars().all()
        return [_record(row) for row in rows]

    async def finish(
        self,
        alert_id: int,
        status: AlertStatus,
        reason: Reason | str | None,
        *,
        notice: OutboxEntry | None = None,
        user_id: int | None = None,
    ) -> OutboxMessage | None:
        """Closes the alert and queues the chat notice saying so, in one transaction.

        Returns the queued message (None without a notice, or when its dedupe key was
        queued before)."""
        now = self._clock()
        async with self._db.transaction() as session:
            await finish_in(session, alert_id, status, reason, now)
            if notice is None:
                return None
            return await insert_entry(self._db.dialect, session, user_id, notice, now)

    async def _finish(
        self, alert_id: int, status: AlertStatus, reason: Reason | str | None
    ) -> None:
        async with self._db.transaction() as session:
            await finish_in(session, alert_id, status, reason, self._clock())


async def _insert_legs(
    conn: AsyncConnection, items: Sequence[_Pending], parent_ids: Sequence[int]
) -> list[tuple[int, ...]]:
    """The accounts' rows of each new alert that has them (one statement for all)."""
    rows = [
        values
        for item, parent_id in zip(items, parent_ids, strict=True)
        for values in item.leg_values(parent_id)
    ]
    if not rows:
        return [() for _ in items]
    inserted = await conn.execute(
        insert(Alert).returning(col(Alert.id), sort_by_parameter_order=True), rows
    )
    ids = iter(require_id(new_id) for new_id in inserted.scalars())
    return [tuple(next(ids) for _ in item.legs) for item in items]


async def finish_in(
    session: AsyncSession,
    alert_id: int,
    status: AlertStatus,
    reason: Reason | str | None,
    now: datetime,
) -> None:
    """Sets an alert's final status inside the caller's transaction."""
    await session.execute(
        update(Alert)
        .where(col(Alert.id) == alert_id)
        .values(status=status.value, updated_at=now, **reason_values(reason))
    )
