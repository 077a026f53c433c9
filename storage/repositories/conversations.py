"""The bot's conversation state per chat (a `/keys` flow in progress, a pending 2FA
step), in the database so that any instance can carry a conversation on.

The data may hold a secret typed in the middle of a flow (an App Secret waiting for
its 2FA code), so it is stored only encrypted, bound to its row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import col

from storage import aad
from storage.crypto import SecretBox
from storage.db import Database
from storage.models import Conversation
from storage.repositories._sql import Clock, upsert
from storage.types import utcnow


class Conversations:
    def __init__(self, db: Database, box: SecretBox, clock: Clock = utcnow) -> None:
        self._db = db
        self._box = box
        self._clock = clock

    async def get_state(self, key: str) -> str | None:
        async with self._db.session() as session:
            row = await session.get(Conversation, key)
            return None if row is None else row.state

    async def set_state(self, key: str, state: str | None) -> None:
        await self._write(key, {"state": state})

    async def get_data(self, key: str) -> dict[str, Any]:
        async with self._db.session() as session:
            row = await session.get(Conversation, key)
        if row is None or row.data_enc is None:
            return {}
        data = json.loads(self._box.decrypt(row.data_enc, aad.conversation(key)))
        return data if isinstance(data, dict) else {}

    async def set_data(self, key: str, data: Mapping[str, Any]) -> None:
        blob = (
            self._box.encrypt(json.dumps(dict(data), separators=(",", ":")),
                              aad.conversation(key))
            if data
            else None
        )
        await self._write(key, {"data_enc": blob})

    async def _write(self, key: str, values: dict[str, object]) -> None:
        row: dict[str, object] = {"key": key, "updated_at": self._clock(), **values}
        row.setdefault("state", None)
        row.setdefault("data_enc", None)
        async with self._db.transaction() as session:
            await session.execute(
                upsert(self._db.dialect, Conversation, row, ["key"], [*values, "updated_at"])
            )
            # A conversation left with no state and no data is gone: no empty rows pile up.
            await session.execute(
                delete(Conversation).where(
                    col(Conversation.key) == key,
                    col(Conversation.state).is_(None),
                    col(Conversation.data_enc).is_(None),
                )
            )

    async def keys(self) -> list[str]:
        async with self._db.session() as session:
            return list((await session.execute(select(col(Conversation.key)))).scalars())
