"""Fixed-window hit counters in the database, shared by every instance (sign-in limits).

One row per bucket and window; a hit is one atomic upsert that returns the new count,
so concurrent hits on several instances never under-count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Insert, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from storage.db import Database
from storage.models import RateBucket
from storage.repositories._sql import Clock, rowcount
from storage.types import utcnow

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Hit:
    allowed: bool
    hits: int  # in this window, this one included
    retry_after: int  # whole seconds until the window ends (0 when allowed)


class RateBuckets:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self._db = db
        self._clock = clock

    def __repr__(self) -> str:
        return "RateBuckets()"

    async def hit(self, bucket: str, limit: int, window: timedelta) -> Hit:
        """Counts one hit; allowed while the window's hits stay within `limit`."""
        if limit < 1 or window <= timedelta(0):
            raise ValueError("limit must be >= 1 and window positive")
        now = self._clock()
        start = _window_start(now, window)
        values = {"bucket": bucket[:96], "window_start": start, "hits": 1}
        table = RateBucket.__table__  # type: ignore[attr-defined]  # SQLModel table
        statement: Insert
        if self._db.dialect == "postgresql":
            pg = postgresql.insert(RateBucket).values(**values)
            statement = pg.on_conflict_do_update(
                index_elements=["bucket", "window_start"], set_={"hits": table.c.hits + 1}
            )
        else:
            lite = sqlite.insert(RateBucket).values(**values)
            statement = lite.on_conflict_do_update(
                index_elements=["bucket", "window_start"], set_={"hits": table.c.hits + 1}
            )
        async with self._db.transaction() as session:
            hits = int(
                (await session.execute(statement.returning(table.c.hits))).scalar_one()
            )
        if hits <= limit:
            return Hit(True, hits, 0)
        left = (start + window - now).total_seconds()
        return Hit(False, hits, max(1, int(left) + (left % 1 > 0)))

    async def sweep(self, older_than: timedelta) -> int:
        """Drops windows that started before `now - older_than`."""
        cutoff = self._clock() - older_than
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(RateBucket).where(col(RateBucket.window_start) < cutoff)
            )
        return rowcount(result)


def _window_start(now: datetime, window: timedelta) -> datetime:
    elapsed = (now - _EPOCH) // window
    return _EPOCH + elapsed * window
