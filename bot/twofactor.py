"""2FA in the chat: the code as its own message, then the prompt; checking the answer.

Codes themselves (6 digits, CSPRNG, 5 minutes, 5 tries, single use, hashed,
constant-time) are storage's `TwoFactor`; this module only talks to the user.
"""

from __future__ import annotations

import enum
from typing import Final

from aiogram.types import Message

from bot.texts import Lang, t
from storage.facade import Storage
from storage.records import UserRecord, VerifyOutcome, VerifyResult
from storage.repositories.twofactor import well_formed

PURPOSE_KEYS: Final = "keys"
PURPOSE_REAL: Final = "real"
PURPOSE_ROTATE: Final = "webhook_rotate"
PURPOSE_DELETE: Final = "delete"
PURPOSE_TOTP: Final = "totp"  # enrolling an authenticator app (takes a chat code)
PURPOSE_LIMITS: Final = "limits"  # raising or removing a risk limit
PURPOSE_ACCOUNT_DELETE: Final = "account_delete"  # deleting one account and its keys

_ACTION: Final = {
    PURPOSE_KEYS: "tfa.action_keys",
    PURPOSE_REAL: "tfa.action_real",
    PURPOSE_ROTATE: "tfa.action_rotate",
    PURPOSE_DELETE: "tfa.action_delete",
    PURPOSE_TOTP: "tfa.action_totp",
    PURPOSE_LIMITS: "tfa.action_limits",
    PURPOSE_ACCOUNT_DELETE: "tfa.action_account_delete",
}
_RESTART: Final = {
    PURPOSE_KEYS: "/keys",
    PURPOSE_REAL: "/real",
    PURPOSE_ROTATE: "/webhook rotate",
    PURPOSE_DELETE: "/delete",
    PURPOSE_TOTP: "/totp",
    PURPOSE_LIMITS: "/limits",
    PURPOSE_ACCOUNT_DELETE: "/accounts",
}


class CodeCheck(enum.Enum):
    OK = enum.auto()
    RETRY = enum.auto()  # wrong or malformed: the user may try again
    OVER = enum.auto()  # void, expired or gone: the flow ends


async def send_code(
    message: Message, storage: Storage, user: UserRecord, purpose: str, lang: Lang
) -> None:
    """Ask for the second factor: the authenticator app's code once one is enrolled
    (for the actions that take it), else a fresh chat code sent as its own message."""
    action = t(lang, _ACTION[purpose])
    if await storage.second_factor.uses_totp(user.id, purpose):
        await message.answer(t(lang, "tfa.ask_totp", action=action))
        return
    code = await storage.two_factor.issue(user.id, purpose)
    await message.answer(t(lang, "tfa.code", code=code))
    await message.answer(t(lang, "tfa.ask", action=action))


async def check_code(
    message: Message, storage: Storage, user: UserRecord, purpose: str, lang: Lang
) -> CodeCheck:
    """Verify the user's answer and tell them what happened unless it is right."""
    answer = (message.text or "").strip()
    if not well_formed(answer):
        await message.answer(t(lang, "tfa.not_a_code"))
        return CodeCheck.RETRY
    totp = await storage.second_factor.uses_totp(user.id, purpose)
    result = await storage.second_factor.verify(user.id, purpose, answer)
    return await _tell(message, result, lang, _RESTART[purpose], totp=totp)


async def _tell(
    message: Message, result: VerifyResult, lang: Lang, restart: str, *, totp: bool
) -> CodeCheck:
    if result.ok:
        return CodeCheck.OK
    if result.outcome is VerifyOutcome.WRONG:
        await message.answer(t(lang, "tfa.wrong", left=result.tries_left))
        return CodeCheck.RETRY
    if totp and result.outcome is VerifyOutcome.VOID:
        await message.answer(t(lang, "totp.locked", command=restart))
    elif result.outcome is VerifyOutcome.EXPIRED:
        await message.answer(t(lang, "tfa.expired", command=restart))
    else:
        await message.answer(t(lang, "tfa.void", command=restart))
    return CodeCheck.OVER


async def check_totp(
    message: Message, result: VerifyResult, lang: Lang, restart: str
) -> CodeCheck:
    """Tell the user what an authenticator check (`Totp.confirm`/`disable`) came to."""
    return await _tell(message, result, lang, restart, totp=True)
