"""Alembic environment: runs on the connection `Database.migrate` hands in.

Run from the command line in the project root (`alembic current`, `alembic history`;
`alembic.ini` points here) it opens its own async engine on `-x url=…`, else on
MOAHOOK_DATABASE_URL from the environment or `./.env`, else on the default SQLite file
under MOAHOOK_DATA_DIR — the database `moahook serve` would use.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Literal

from alembic import context
from dotenv import dotenv_values
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import storage.models  # noqa: F401 - registers the tables on SQLModel.metadata
from storage.db import default_database_url
from storage.types import UtcDateTime

target_metadata = SQLModel.metadata


def _render_item(kind: str, obj: object, _ctx: object) -> str | Literal[False]:
    """Revisions name plain SQLAlchemy types, so they never import moahook code."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=True,  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    configured = context.config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    env = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    env.update(os.environ)
    given = (env.get("MOAHOOK_DATABASE_URL") or "").strip()
    data_dir = (env.get("MOAHOOK_DATA_DIR") or "").strip() or "data"
    return given or default_database_url(Path(data_dir))


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
    else:
        asyncio.run(_run_async())
