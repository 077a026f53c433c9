"""Telegram Mini App sign-in: `initData` checked as Telegram specifies (pure).

The signature check is aiogram's (`aiogram.utils.web_app`: HMAC-SHA-256 of the sorted
fields under the key HMAC-SHA-256("WebAppData", bot token)); this module adds what the
signature alone does not say: the data is fresh and names a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from aiogram.utils.web_app import safe_parse_webapp_init_data

MAX_INIT_DATA_CHARS: Final = 8192
# Telegram's clock and ours may differ a little; a date further ahead is forged or broken.
CLOCK_SKEW: Final = timedelta(minutes=5)


class InitDataError(ValueError):
    """Why initData was refused; the message is safe to show the client."""


@dataclass(frozen=True, slots=True)
class TelegramUser:
    id: int
    first_name: str
    username: str | None
    language_code: str | None


def check_init_data(
    bot_token: str, raw: str, *, now: datetime, max_age: timedelta
) -> TelegramUser:
    """The signed-in Telegram user, or `InitDataError` saying what is wrong."""
    if not raw or len(raw) > MAX_INIT_DATA_CHARS:
        raise InitDataError("init_data is empty or too long")
    try:
        data = safe_parse_webapp_init_data(bot_token, raw)
    except (ValueError, TypeError):
        # TypeError: a hash with non-ASCII characters cannot even be compared.
        raise InitDataError("init_data signature is not valid for this bot") from None
    signed_at = data.auth_date
    if signed_at.tzinfo is None:  # pragma: no cover - aiogram parses unix time as aware UTC
        raise InitDataError("init_data auth_date has no time zone")
    if now - signed_at > max_age:
        raise InitDataError(
            f"init_data is too old (auth_date more than {int(max_age.total_seconds())} s ago): "
            "reopen the app from Telegram"
        )
    if signed_at - now > CLOCK_SKEW:
        raise InitDataError("init_data auth_date is in the future")
    user = data.user
    if user is None:
        raise InitDataError("init_data names no user")
    return TelegramUser(
        id=user.id, first_name=user.first_name, username=user.username,
        language_code=user.language_code,
    )
