"""Inline keyboards and their typed callback data."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import BUTTON_PAPER, BUTTON_REAL, Lang, t


class EnvChoice(CallbackData, prefix="keyenv"):
    """The environment chosen for the keys being registered."""

    env: str


class ModeSwitch(CallbackData, prefix="mode"):
    """A request to make `env` the active environment."""

    env: str


class Recheck(CallbackData, prefix="recheck"):
    """Run the key checks again with the stored keys of `env`."""

    env: str


def _env_rows(factory: type[EnvChoice] | type[ModeSwitch]) -> list[list[InlineKeyboardButton]]:
    # Paper first: it is the default and the safe choice (SPEC section 5).
    return [
        [
            InlineKeyboardButton(text=BUTTON_PAPER, callback_data=factory(env="paper").pack()),
            InlineKeyboardButton(text=BUTTON_REAL, callback_data=factory(env="real").pack()),
        ]
    ]


def env_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=_env_rows(EnvChoice))


def mode_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=_env_rows(ModeSwitch))


def recheck_keyboard(lang: Lang, env: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=t(lang, "status.recheck_button"), callback_data=Recheck(env=env).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])
