"""The pipeline's bounded way into the database, as its helpers take it."""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import Protocol, TypeVar

_T = TypeVar("_T")


class DbGate(Protocol):
    """Runs one storage call under the pipeline's bound on concurrent database calls."""

    def __call__(self, operation: Coroutine[object, object, _T], /) -> Awaitable[_T]: ...
