"""Small helpers for answering a button press in its chat."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

from aiogram.types import CallbackQuery, Message


async def settle(query: CallbackQuery, outcome: str) -> None:
    """The pressed message keeps its text, loses its buttons, and says what became of
    it. An edit that fails changes nothing that was decided."""
    message = query.message
    if not isinstance(message, Message):
        return
    with contextlib.suppress(Exception):
        await message.edit_text(f"{message.text or ''}\n\n{outcome}", reply_markup=None)


def replier(query: CallbackQuery) -> Callable[[str], Awaitable[object]]:
    """Answer a press with a new message in its chat."""

    async def say(text: str) -> object:
        if isinstance(query.message, Message):
            return await query.message.answer(text)
        return None

    return say
