"""The guard that keeps each user's data in their own private chat.

Every handler reads the user from the update's `from_user` (never from text or
callback data), and only in a private chat with that same user: the bot never shows
anyone's keys, orders or webhook URL in a group, and a button pressed on a message
can only act for the person who pressed it.
"""

from __future__ import annotations

from aiogram.enums import ChatType
from aiogram.filters import Filter
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, User


def own_private_chat(user: User | None, chat: Chat | None) -> bool:
    """True for a private chat whose id is the sender's (Telegram's private chat id)."""
    return (
        user is not None
        and chat is not None
        and chat.type == ChatType.PRIVATE
        and chat.id == user.id
        and not user.is_bot
    )


def event_chat(event: TelegramObject) -> Chat | None:
    if isinstance(event, Message):
        return event.chat
    if isinstance(event, CallbackQuery) and event.message is not None:
        return event.message.chat
    return None


def event_user(event: TelegramObject) -> User | None:
    if isinstance(event, (Message, CallbackQuery)):
        return event.from_user
    return None


class OwnPrivateChat(Filter):
    """Passes messages and button presses only in the sender's own private chat."""

    async def __call__(self, event: TelegramObject) -> bool:
        return own_private_chat(event_user(event), event_chat(event))
