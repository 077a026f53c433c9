"""`moahook migrate [--check]`: the Alembic migrations on their own (serve runs them too)."""

from __future__ import annotations

import asyncio
import sys

from moahook.settings import Settings
from storage.db import Database, database_exists, head_revision
from storage.errors import StorageError


def run_migrate(settings: Settings, *, check: bool) -> int:
    """0: current (or brought up to date); 1: `--check` found migrations due; 2: the
    database could not be reached or a migration failed (one line on stderr)."""
    try:
        return asyncio.run(_migrate(settings.database_url, check=check))
    except StorageError as exc:
        print(f"moahook: {exc}", file=sys.stderr)
        return 2


async def _migrate(url: str, *, check: bool) -> int:
    head = head_revision()
    if check and not database_exists(url):  # checking must not create an empty file
        print(f"database {url} does not exist yet; {head} is due: run `moahook migrate`")
        return 1
    db = Database.create(url)
    try:
        current = await db.current_revision()
        if check:
            if current == head:
                print(f"database schema is current (revision {head})")
                return 0
            print(f"database schema is at revision {current or '(none)'}; "
                  f"{head} is due: run `moahook migrate`")
            return 1
        if current == head:
            print(f"database schema already current (revision {head})")
            return 0
        await db.migrate()
        print(f"database schema migrated from revision {current or '(none)'} to {head}")
        return 0
    finally:
        await db.dispose()
