"""aiogram's conversation state (FSM) kept in the database, encrypted.

Any instance can then carry a conversation on: the Telegram polling lease may move to
another instance in the middle of `/keys`, and in webhook mode each update may reach
a different instance, without the user noticing (SPEC section 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey

from storage.repositories.conversations import Conversations


def conversation_key(key: StorageKey) -> str:
    parts = (
        key.bot_id, key.chat_id, key.user_id, key.thread_id or "", key.business_connection_id
        or "", key.destiny,
    )
    return ":".join(str(part) for part in parts)


class DatabaseStorage(BaseStorage):
    def __init__(self, conversations: Conversations) -> None:
        self._conversations = conversations

    def __repr__(self) -> str:
        return "DatabaseStorage()"

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._conversations.set_state(conversation_key(key), value)

    async def get_state(self, key: StorageKey) -> str | None:
        return await self._conversations.get_state(conversation_key(key))

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._conversations.set_data(conversation_key(key), data)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        return await self._conversations.get_data(conversation_key(key))

    async def close(self) -> None:
        """Storage's life cycle belongs to `Storage`; nothing to close here."""
