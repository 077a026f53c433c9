"""Which user and alert the current task works for, for every log line on an alert's path.

Set where an alert is taken (the webhook intake, the order pipeline's job, a
reconciliation); a task inherits it into everything it awaits or starts, KIS calls
included. The composition root's logging filter reads it (`moahook.log`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final

_CURRENT: Final[ContextVar[dict[str, int] | None]] = ContextVar("moahook_alert", default=None)


def current() -> dict[str, int]:
    """`{"user_id": …, "alert_id": …}` as far as known; empty outside an alert's path."""
    return dict(_CURRENT.get() or {})


@contextlib.contextmanager
def alert_context(user_id: int | None = None, alert_id: int | None = None) -> Iterator[None]:
    token = _CURRENT.set(_merged(user_id, alert_id))
    try:
        yield
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """No ids inside: for starting long-lived tasks that serve many alerts."""
    token = _CURRENT.set(None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def set_alert_context(user_id: int | None = None, alert_id: int | None = None) -> None:
    """For the rest of the current task (a request handler learns the ids step by step)."""
    _CURRENT.set(_merged(user_id, alert_id))


def _merged(user_id: int | None, alert_id: int | None) -> dict[str, int]:
    ids = current()
    if user_id is not None:
        ids["user_id"] = user_id
    if alert_id is not None:
        ids["alert_id"] = alert_id
    return ids
