"""A SQLite database is served by one process: a second one is refused, and the lock
goes with the process however it ends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from storage.errors import DatabaseInUse
from storage.exclusive import ExclusiveUse

HOLD = """
import sys
from storage.exclusive import ExclusiveUse
lock = ExclusiveUse.for_url(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_second_process_is_refused_until_the_first_is_gone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'moahook.db'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = ExclusiveUse.for_url(url)
        assert lock is not None
        with pytest.raises(DatabaseInUse, match="already using the SQLite database"):
            lock.acquire()
        holder.kill()  # kill -9: the operating system drops the lock with the process
        holder.wait(timeout=10)
        lock.acquire()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=10)


def test_postgresql_and_memory_databases_need_no_lock() -> None:
    assert ExclusiveUse.for_url("postgresql+asyncpg://u@h/db") is None
    assert ExclusiveUse.for_url("sqlite+aiosqlite://") is None
    assert ExclusiveUse.for_url("sqlite+aiosqlite:///:memory:") is None
