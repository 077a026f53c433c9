"""Small SQL helpers shared by the repositories."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Insert, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from storage.signals import USERS_CHANNEL, Signals

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ChangeListener = Callable[[int], None]

# Namespaces for `Database.lock` (PostgreSQL advisory locks).
LOCK_ALERTS = 1


def insert_ignoring(
    dialect: str,
    model: type[SQLModel],
    values: Mapping[str, object],
    conflict: Sequence[str],
) -> Insert:
    """INSERT that does nothing when the unique `conflict` columns already exist."""
    if dialect == "postgresql":
        return (
            postgresql.insert(model).values(**values).on_conflict_do_nothing(
                index_elements=list(conflict)
            )
        )
    return sqlite.insert(model).values(**values).on_conflict_do_nothing(
        index_elements=list(conflict)
    )


def insert_ignoring_by_column(
    dialect: str, model: type[SQLModel], columns: Sequence[str], conflict: Sequence[str]
) -> Insert:
    """`insert_ignoring` with one bind parameter per column, named and typed as the
    column: a statement to build once and run with parameters by column name."""
    table = model.__table__  # type: ignore[attr-defined]  # SQLModel table
    return insert_ignoring(
        dialect, model, {name: bindparam(name, type_=table.c[name].type) for name in columns},
        conflict,
    )


def upsert(
    dialect: str,
    model: type[SQLModel],
    values: Mapping[str, object],
    conflict: Sequence[str],
    update: Sequence[str],
) -> Insert:
    """INSERT, or UPDATE the `update` columns to the new values when `conflict` matches."""
    if dialect == "postgresql":
        pg = postgresql.insert(model).values(**values)
        return pg.on_conflict_do_update(
            index_elements=list(conflict), set_={name: pg.excluded[name] for name in update}
        )
    lite = sqlite.insert(model).values(**values)
    return lite.on_conflict_do_update(
        index_elements=list(conflict), set_={name: lite.excluded[name] for name in update}
    )


def require_id(value: int | None) -> int:
    if value is None:  # pragma: no cover - rows read from the database always have ids
        raise ValueError("row has no id")
    return value


def rowcount(result: object) -> int:
    """Rows an UPDATE/DELETE touched (`CursorResult.rowcount`, typed loosely by SQLAlchemy)."""
    count = getattr(result, "rowcount", 0)
    return count if isinstance(count, int) else 0


class ChangeListeners:
    """Callbacks told a user's id after a change of theirs committed.

    For in-memory caches of what rarely changes (the order pipeline's guard inputs):
    called synchronously right after the commit, so no await separates the change
    from the invalidation. Other instances hear of it through the `users` signal, sent
    with the change's own transaction (`signal_in`), so a change is never committed
    without it.
    """

    def __init__(self, signals: Signals | None = None) -> None:
        self._listeners: list[ChangeListener] = []
        self._signals = signals

    async def signal_in(self, session: AsyncSession, user_id: int) -> None:
        if self._signals is not None:
            await self._signals.notify_in(session, USERS_CHANNEL, str(user_id))

    def add(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def remove(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def notify(self, user_id: int) -> None:
        for listener in list(self._listeners):
            try:
                listener(user_id)
            except Exception:  # a cache must never break a write
                log.exception("change listener failed")
