"""A string that never shows itself in repr, str or logs by accident."""

from __future__ import annotations

import hmac
from typing import Final

_MASK: Final = "****"


def mask(value: str, visible: int = 4) -> str:
    """`****abcd`: at most the last `visible` characters, none for short values."""
    if len(value) <= visible * 2:
        return _MASK
    return _MASK + value[-visible:]


class Secret:
    """Wraps a secret value; `reveal()` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked()!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> str:  # pragma: no cover - refuse pickling secrets
        raise TypeError("Secret values are not picklable")
