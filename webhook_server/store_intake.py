"""`StorageIntake`: the `AlertIntake` the web server uses in production.

token → user (by the token's hash, cached in memory) → the alert durably stored with
SPEC section 4's duplicate rule → handed to the order pipeline in memory → answered.
The answer never waits for KIS.

Durability at a high alert rate comes from group commit (`AlertWriter`): concurrent
accepts queue up while one transaction is being written, and the next transaction
stores all of them at once; every request is answered after its own batch committed.
A lone alert is written at once, so group commit adds no latency when idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Protocol

from sqlalchemy import Row, insert, select
from sqlmodel import col

from storage.crypto import hash_token
from storage.db import Database
from storage.facade import Storage
from storage.models import Alert as AlertRow
from storage.records import AcceptResult, AlertStatus
from storage.repositories._sql import LOCK_ALERTS, require_id
from storage.repositories.alerts import BODY_WINDOW, ID_WINDOW, _key_column, body_hash
from storage.types import utcnow
from webhook_server.alert import Alert
from webhook_server.intake import UNKNOWN_TOKEN, Accepted, Duplicate, IntakeResult

log = logging.getLogger(__name__)

MAX_BATCH: Final = 256
MAX_CACHED_TOKENS: Final = 100_000


@dataclass(frozen=True, slots=True)
class AcceptedAlert:
    """An alert just stored, handed to the pipeline without a database round trip."""

    alert_id: int
    user_id: int
    alert: Alert
    arrived: float = field(default_factory=time.perf_counter)  # monotonic, for latency


class AlertSink(Protocol):
    def submit(self, accepted: AcceptedAlert) -> None:
        """Queue an accepted alert; must not block (the HTTP answer waits on it)."""
        ...


# --- group commit ------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    user_id: int
    raw_body: str
    parsed: dict[str, object] | None
    key: str | None
    digest: str
    now: datetime
    result: asyncio.Future[AcceptResult]


class AlertWriter:
    """Stores alerts like `Alerts.accept`, many per transaction.

    Same duplicate rule and the same per-user serialisation (one writer on SQLite,
    advisory locks per user on PostgreSQL, taken in user order to avoid deadlocks).
    Duplicates inside one batch are found too: the first one is stored, the later ones
    answer with its id.
    """

    def __init__(
        self, db: Database, clock: Callable[[], datetime], max_batch: int = MAX_BATCH
    ) -> None:
        self._db = db
        self._clock = clock
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="moahook-alert-writer")

    async def close(self) -> None:
        """Writes what is queued, then stops."""
        self._closing = True
        self._ready.set()
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def accept(
        self,
        user_id: int,
        raw_body: str,
        parsed: Mapping[str, object] | None,
        idempotency_key: str | None,
        now: datetime | None = None,
    ) -> AcceptResult:
        if self._task is None or self._closing:
            raise RuntimeError("the alert writer is not running")
        future: asyncio.Future[AcceptResult] = asyncio.get_running_loop().create_future()
        self._queue.append(
            _Pending(
                user_id=user_id,
                raw_body=raw_body,
                parsed=None if parsed is None else dict(parsed),
                key=_key_column(idempotency_key) if idempotency_key else None,
                digest=body_hash(raw_body),
                now=now or self._clock(),
                result=future,
            )
        )
        self._ready.set()
        # shield: a client that hangs up must not cancel the write of the whole batch
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    results = await self._write(batch)
                except Exception as exc:
                    log.exception("storing %d alerts failed", len(batch))
                    for item in batch:
                        if not item.result.done():
                            item.result.set_exception(exc)
                    continue
                for item, result in zip(batch, results, strict=True):
                    if not item.result.done():
                        item.result.set_result(result)
            if self._closing:
                return

    async def _write(self, batch: Sequence[_Pending]) -> list[AcceptResult]:
        users = sorted({item.user_id for item in batch})
        keys = {item.key for item in batch if item.key is not None}
        digests = {item.digest for item in batch if item.key is None}
        oldest = min(item.now for item in batch)
        async with self._db.transaction() as session:
            for user_id in users:
                await self._db.lock(session, LOCK_ALERTS, user_id)
            # One query per rule, each on its own index (an OR would scan the table).
            rows: list[Row[int | None, int, str | None, str, datetime]] = []
            if keys:
                rows += (
                    await session.execute(
                        _SEEN.where(
                            col(AlertRow.user_id).in_(users),
                            col(AlertRow.idempotency_key).in_(keys),
                            col(AlertRow.received_at) > oldest - ID_WINDOW,
                        )
                    )
                ).all()
            if digests:
                rows += (
                    await session.execute(
                        _SEEN.where(
                            col(AlertRow.user_id).in_(users),
                            col(AlertRow.body_hash).in_(digests),
                            col(AlertRow.received_at) > oldest - BODY_WINDOW,
                        )
                    )
                ).all()
            rows.sort(key=lambda r: require_id(r[0]))
            existing = [_Seen(require_id(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
            outcome: list[int | _Seen] = []  # index into `fresh`, or the first alert
            fresh: list[_Pending] = []
            for item in batch:
                first = _first_match(existing, item)
                if first is not None:
                    outcome.append(first)
                    continue
                outcome.append(len(fresh))
                fresh.append(item)
                # later items of this batch see this one as already stored
                existing.append(_Seen(-len(fresh), item.user_id, item.key, item.digest, item.now))
            ids: list[int] = []
            if fresh:
                ids = [
                    require_id(new_id)
                    for new_id in (
                        await session.execute(
                            insert(AlertRow).returning(
                                col(AlertRow.id), sort_by_parameter_order=True
                            ),
                            [_values(item) for item in fresh],
                        )
                    ).scalars()
                ]
        results: list[AcceptResult] = []
        for entry in outcome:
            if isinstance(entry, int):
                results.append(AcceptResult(alert_id=int(ids[entry]), duplicate=False))
            elif entry.id < 0:  # a duplicate of an alert stored in this same batch
                results.append(AcceptResult(alert_id=int(ids[-entry.id - 1]), duplicate=True))
            else:
                results.append(AcceptResult(alert_id=entry.id, duplicate=True))
        return results


_SEEN: Final = select(
    col(AlertRow.id),
    col(AlertRow.user_id),
    col(AlertRow.idempotency_key),
    col(AlertRow.body_hash),
    col(AlertRow.received_at),
)


@dataclass(frozen=True, slots=True)
class _Seen:
    id: int  # negative: -(position + 1) in this batch's inserts
    user_id: int
    key: str | None
    digest: str
    received_at: datetime


def _first_match(seen: Sequence[_Seen], item: _Pending) -> _Seen | None:
    for row in seen:  # oldest first: the first alert's id is the answer
        if row.user_id != item.user_id:
            continue
        if item.key is not None:
            if row.key == item.key and row.received_at > item.now - ID_WINDOW:
                return row
        elif row.digest == item.digest and row.received_at > item.now - BODY_WINDOW:
            return row
    return None


def _values(item: _Pending) -> dict[str, object]:
    return {
        "user_id": item.user_id,
        "received_at": item.now,
        "raw_body": item.raw_body,
        "parsed": item.parsed,
        "idempotency_key": item.key,
        "body_hash": item.digest,
        "status": AlertStatus.ACCEPTED.value,
        "updated_at": item.now,
    }


# --- the intake --------------------------------------------------------------------------


class StorageIntake:
    """`AlertIntake` on `Storage`: durable before the answer, pipeline fed in memory."""

    def __init__(
        self,
        storage: Storage,
        sink: AlertSink,
        *,
        group_commit: bool = True,
        max_batch: int = MAX_BATCH,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._storage = storage
        self._sink = sink
        self._users: dict[str, int] = {}  # token hash → user id
        self._writer = (
            AlertWriter(storage.db, clock or utcnow, max_batch) if group_commit else None
        )

    def __repr__(self) -> str:
        return f"StorageIntake(cached_tokens={len(self._users)})"

    async def start(self) -> None:
        if self._writer is not None:
            await self._writer.start()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.close()

    def forget_token(self, token: str) -> None:
        """Drop a token from the cache (call when it is rotated away or deleted)."""
        self._users.pop(hash_token(token), None)

    def forget_user(self, user_id: int) -> None:
        """Drop every cached token of a user (rotation when the old token is not at hand)."""
        for digest in [d for d, uid in self._users.items() if uid == user_id]:
            del self._users[digest]

    async def submit(
        self, token: str, body: bytes, alert: Alert, received_at: datetime
    ) -> IntakeResult:
        arrived = time.perf_counter()
        user_id = await self._user_for(token)
        if user_id is None:
            return UNKNOWN_TOKEN
        raw = body.decode("utf-8-sig")  # parse_alert decoded it already: cannot fail
        parsed = alert.to_json()
        if self._writer is not None:
            result = await self._writer.accept(user_id, raw, parsed, alert.id, received_at)
        else:
            result = await self._storage.alerts.accept(
                user_id, raw, parsed, alert.id, received_at
            )
        if result.duplicate:
            return Duplicate(str(result.alert_id))
        self._sink.submit(AcceptedAlert(result.alert_id, user_id, alert, arrived))
        return Accepted(str(result.alert_id))

    async def _user_for(self, token: str) -> int | None:
        digest = hash_token(token)
        user_id = self._users.get(digest)
        if user_id is not None:
            return user_id
        user = await self._storage.users.by_webhook_token(token)
        if user is None:
            return None  # unknown tokens are not cached: a new user's token works at once
        if len(self._users) >= MAX_CACHED_TOKENS:
            with contextlib.suppress(StopIteration, KeyError):
                del self._users[next(iter(self._users))]
        self._users[digest] = user.id
        return user.id


__all__ = [
    "AcceptedAlert",
    "AlertSink",
    "AlertWriter",
    "StorageIntake",
]
