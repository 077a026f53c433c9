"""Authenticator-app codes (TOTP, RFC 6238): the stronger second factor.

A chat 2FA code travels to the same Telegram chat it is typed into, so a hijacked
Telegram session defeats it; a TOTP code comes from the user's phone. The secret is
encrypted at rest (bound to its row) and is shown only once, at enrolment. A code is
accepted for its 30-second step and one step either side, and never twice (the newest
accepted step is kept). Five wrong codes lock checking for five minutes.

Every interface (the bot, the dashboard) checks codes here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import pyotp
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import aad
from storage.crypto import SecretBox
from storage.db import Database
from storage.models import TotpSecret
from storage.records import VerifyOutcome, VerifyResult
from storage.repositories._sql import Clock
from storage.repositories.twofactor import well_formed
from storage.types import utcnow

STEP_SECONDS: Final = 30
WINDOW_STEPS: Final = 1
MAX_FAILURES: Final = 5
LOCK: Final = timedelta(minutes=5)
ISSUER: Final = "moahook"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """Shown to the user once: the secret (for typing in) and the otpauth:// URI (QR)."""

    secret: str
    uri: str

    def __repr__(self) -> str:
        return "Enrolment(****)"


class Totp:
    def __init__(self, db: Database, box: SecretBox, clock: Clock = utcnow) -> None:
        self._db = db
        self._box = box
        self._clock = clock

    async def enrolled(self, user_id: int) -> bool:
        async with self._db.session() as session:
            confirmed = (
                await session.execute(
                    select(col(TotpSecret.confirmed_at)).where(col(TotpSecret.user_id) == user_id)
                )
            ).scalar_one_or_none()
        return confirmed is not None

    async def begin(self, user_id: int, account_name: str) -> Enrolment | None:
        """A new secret awaiting its first code (any earlier unconfirmed one is replaced);
        None when an authenticator is already enrolled (disable it first)."""
        now = self._clock()
        secret = pyotp.random_base32()  # 160 bits
        async with self._db.transaction() as session:
            existing = await _row(session, user_id)
            if existing is not None and existing.confirmed_at is not None:
                return None
            await session.execute(delete(TotpSecret).where(col(TotpSecret.user_id) == user_id))
            await session.execute(
                insert(TotpSecret).values(
                    user_id=user_id,
                    secret_enc=self._box.encrypt(secret, aad.totp_secret(user_id)),
                    last_step=0,
                    failures=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        uri = pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)
        return Enrolment(secret, uri)

    async def confirm(self, user_id: int, code: str) -> VerifyResult:
        """The first code from the app: the enrolment takes effect."""
        return await self._check(user_id, code, confirming=True)

    async def verify(self, user_id: int, code: str) -> VerifyResult:
        """A code for a sensitive action (NONE when no authenticator is enrolled)."""
        return await self._check(user_id, code, confirming=False)

    async def disable(self, user_id: int, code: str) -> VerifyResult:
        """Remove the authenticator; it takes a valid code from it."""
        result = await self._check(user_id, code, confirming=False)
        if result.ok:
            async with self._db.transaction() as session:
                await session.execute(
                    delete(TotpSecret).where(col(TotpSecret.user_id) == user_id)
                )
        return result

    async def _check(self, user_id: int, code: str, *, confirming: bool) -> VerifyResult:
        now = self._clock()
        async with self._db.transaction() as session:
            row = await _row(session, user_id, lock=True)
            if row is None or (row.confirmed_at is None) is not confirming:
                return VerifyResult(VerifyOutcome.NONE)
            if row.locked_until is not None and row.locked_until > now:
                return VerifyResult(VerifyOutcome.VOID)
            step = self._matching_step(row, user_id, code.strip(), now)
            changes: dict[str, object] = {"updated_at": now}
            if step is not None:
                changes.update(last_step=step, failures=0, locked_until=None)
                if confirming:
                    changes["confirmed_at"] = now
                outcome = VerifyResult(VerifyOutcome.OK)
            elif row.failures + 1 >= MAX_FAILURES:
                changes.update(failures=0, locked_until=now + LOCK)
                outcome = VerifyResult(VerifyOutcome.VOID)
            else:
                changes["failures"] = row.failures + 1
                outcome = VerifyResult(
                    VerifyOutcome.WRONG, tries_left=MAX_FAILURES - row.failures - 1
                )
            await session.execute(
                update(TotpSecret).where(col(TotpSecret.id) == row.id).values(**changes)
            )
        return outcome

    def _matching_step(
        self, row: TotpSecret, user_id: int, code: str, now: datetime
    ) -> int | None:
        if not well_formed(code):
            return None
        totp = pyotp.TOTP(self._box.decrypt(bytes(row.secret_enc), aad.totp_secret(user_id)))
        current = int(now.timestamp()) // STEP_SECONDS
        for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
            # A step at or before the last accepted one is a replay, whatever the code.
            if step > row.last_step and hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None


async def _row(session: AsyncSession, user_id: int, *, lock: bool = False) -> TotpSecret | None:
    query = select(TotpSecret).where(col(TotpSecret.user_id) == user_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()
