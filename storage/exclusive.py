"""One serving process per SQLite database (SPEC section 12).

An advisory lock on a file next to the database, held for the life of the process:
the operating system releases it when the process ends, however it ends (kill -9
included), so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

from storage.errors import DatabaseInUse


class ExclusiveUse:
    def __init__(self, lock_path: Path, label: str) -> None:
        self._lock_path = lock_path
        self._label = label
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"ExclusiveUse({self._label!r}, held={self._fd is not None})"

    @classmethod
    def for_url(cls, url: str) -> ExclusiveUse | None:
        """The lock for a SQLite file database; None for anything else (PostgreSQL is
        shared on purpose; an in-memory SQLite belongs to its process anyway)."""
        parsed = make_url(url)
        database = parsed.database or ""
        if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or (
            database.startswith("file:")
        ):
            return None
        path = Path(database).expanduser().resolve()
        return cls(path.with_name(path.name + ".lock"), str(path))

    def acquire(self) -> None:
        """Raises `DatabaseInUse` when another process holds it."""
        if self._fd is not None:
            return
        self._lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DatabaseInUse(self._label) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
