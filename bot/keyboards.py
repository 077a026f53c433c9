"""Inline keyboards and their typed callback data."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import BUTTON_PAPER, BUTTON_REAL, Lang, t


class EnvChoice(CallbackData, prefix="keyenv"):
    """The environment chosen for the keys being registered."""

    env: str


class ModeSwitch(CallbackData, prefix="mode"):
    """A request to make `env` the active environment of the default account."""

    env: str


class AccountModeSwitch(CallbackData, prefix="acctmode"):
    """A request to make `env` the active environment of `account`."""

    env: str
    account: int


class Recheck(CallbackData, prefix="recheck"):
    """Run the key checks again with the stored keys of `env` of the default account."""

    env: str


class AccountRecheck(CallbackData, prefix="acctrecheck"):
    """Run the key checks again with the stored keys of `env` of `account`."""

    env: str
    account: int


class AccountPick(CallbackData, prefix="keyacct"):
    """The account the keys being registered are for."""

    name: str


class DefaultAccount(CallbackData, prefix="acctdefault"):
    """Make `account` the default account."""

    account: int


def account_pick_keyboard(names: list[str]) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(text=name, callback_data=AccountPick(name=name).pack())]
            for name in names]
    return InlineKeyboardMarkup(inline_keyboard=rows)


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


def mode_keyboard(account: int = 0) -> InlineKeyboardMarkup:
    if not account:
        return InlineKeyboardMarkup(inline_keyboard=_env_rows(ModeSwitch))
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(
            text=BUTTON_PAPER, callback_data=AccountModeSwitch(env="paper", account=account).pack()
        ),
        InlineKeyboardButton(
            text=BUTTON_REAL, callback_data=AccountModeSwitch(env="real", account=account).pack()
        ),
    ]])


def recheck_keyboard(lang: Lang, env: str) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(
        text=t(lang, "status.recheck_button"), callback_data=Recheck(env=env).pack()
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


def recheck_accounts_keyboard(
    lang: Lang, accounts: list[tuple[int, str, str]]
) -> InlineKeyboardMarkup:
    """One Re-check per account with keys: (account id, name, environment)."""
    rows = [[InlineKeyboardButton(
        text=t(lang, "status.recheck_account", name=name),
        callback_data=AccountRecheck(env=env, account=account).pack(),
    )] for account, name, env in accounts]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def default_account_keyboard(lang: Lang, accounts: list[tuple[int, str]]) -> InlineKeyboardMarkup:
    rows = [[InlineKeyboardButton(
        text=t(lang, "accounts.default_button", name=name),
        callback_data=DefaultAccount(account=account).pack(),
    )] for account, name in accounts]
    return InlineKeyboardMarkup(inline_keyboard=rows)
