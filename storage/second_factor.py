"""Which second factor a sensitive action takes, and its check — for every interface.

Chat 2FA codes (`TwoFactor`) by default; once the user has enrolled an authenticator
app (`Totp`), the actions in `TOTP_PURPOSES` take its code instead. Deleting keys keeps
the chat code: removing keys is the safe direction, and a user who lost their phone
must still be able to do it.
"""

from __future__ import annotations

from typing import Final

from storage.records import VerifyResult
from storage.repositories.totp import Totp
from storage.repositories.twofactor import TwoFactor

# Saving or replacing keys, switching to real, rotating the webhook, raising limits.
TOTP_PURPOSES: Final = frozenset({"keys", "real", "webhook_rotate", "limits"})


class SecondFactor:
    def __init__(self, two_factor: TwoFactor, totp: Totp) -> None:
        self._two_factor = two_factor
        self._totp = totp

    async def uses_totp(self, user_id: int, purpose: str) -> bool:
        return purpose in TOTP_PURPOSES and await self._totp.enrolled(user_id)

    async def verify(self, user_id: int, purpose: str, code: str) -> VerifyResult:
        if await self.uses_totp(user_id, purpose):
            return await self._totp.verify(user_id, code)
        return await self._two_factor.verify(user_id, purpose, code)
