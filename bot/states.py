"""FSM states of the guided flows."""

from __future__ import annotations

from aiogram.fsm.state import State, StatesGroup


class KeyFlow(StatesGroup):
    """`/keys`: the account's name (SPEC section 16; skipped by `/keys NAME`), then one
    message per answer in SPEC order, then the 2FA code."""

    name = State()
    app_key = State()
    app_secret = State()
    account = State()
    hts_id = State()
    env = State()
    code = State()


class Confirm(StatesGroup):
    """A 2FA code awaited for a sensitive action; the action is in the FSM data."""

    code = State()


class TotpFlow(StatesGroup):
    """`/totp`: a chat code, then the authenticator's first code; `/totp off`: its code."""

    chat_code = State()
    first_code = State()
    off_code = State()
