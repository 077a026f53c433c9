"""One-time 2FA codes (SPEC section 6): hashed with a pepper, single use, 5 tries."""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, or_, select, update
from sqlmodel import col

from storage.crypto import hash_code
from storage.db import Database
from storage.models import TwoFactorCode
from storage.records import VerifyOutcome, VerifyResult
from storage.repositories._sql import Clock
from storage.types import utcnow

CODE_DIGITS: Final = 6
CODE_TTL: Final = timedelta(minutes=5)
MAX_WRONG_TRIES: Final = 5
_SALT_BYTES: Final = 16
_KEEP_SPENT: Final = timedelta(days=1)


def well_formed(code: str) -> bool:
    """Six ASCII digits (str.isdigit() also takes full-width and other scripts' digits)."""
    return len(code) == CODE_DIGITS and code.isascii() and code.isdigit()


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


class TwoFactor:
    def __init__(self, db: Database, pepper: bytes, clock: Clock = utcnow) -> None:
        self._db = db
        self._pepper = pepper
        self._clock = clock

    async def issue(self, user_id: int, purpose: str, now: datetime | None = None) -> str:
        """A fresh code for `purpose`; any earlier open code for it stops working."""
        now = now or self._clock()
        code = new_code()
        salt = os.urandom(_SALT_BYTES)
        async with self._db.transaction() as session:
            await session.execute(
                delete(TwoFactorCode).where(
                    col(TwoFactorCode.user_id) == user_id,
                    or_(
                        col(TwoFactorCode.purpose) == purpose,
                        col(TwoFactorCode.expires_at) < now - _KEEP_SPENT,
                    ),
                )
            )
            await session.execute(
                insert(TwoFactorCode).values(
                    user_id=user_id,
                    purpose=purpose,
                    code_hash=hash_code(code, salt, self._pepper),
                    salt=salt,
                    created_at=now,
                    expires_at=now + CODE_TTL,
                    attempts=0,
                )
            )
        return code

    async def verify(
        self, user_id: int, purpose: str, code: str, now: datetime | None = None
    ) -> VerifyResult:
        now = now or self._clock()
        async with self._db.transaction() as session:
            row = (
                await session.execute(
                    select(TwoFactorCode)
                    .where(
                        col(TwoFactorCode.user_id) == user_id,
                        col(TwoFactorCode.purpose) == purpose,
                        col(TwoFactorCode.used_at).is_(None),
                    )
                    .order_by(col(TwoFactorCode.id).desc())
                    .limit(1)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if row is None:
                return VerifyResult(VerifyOutcome.NONE)
            if row.attempts >= MAX_WRONG_TRIES:
                return VerifyResult(VerifyOutcome.VOID)
            if row.expires_at <= now:
                return VerifyResult(VerifyOutcome.EXPIRED)
            given = hash_code(code.strip(), bytes(row.salt), self._pepper)
            if hmac.compare_digest(given, row.code_hash):
                await session.execute(
                    update(TwoFactorCode)
                    .where(col(TwoFactorCode.id) == row.id)
                    .values(used_at=now)
                )
                return VerifyResult(VerifyOutcome.OK)
            attempts = row.attempts + 1
            await session.execute(
                update(TwoFactorCode)
                .where(col(TwoFactorCode.id) == row.id)
                .values(attempts=attempts)
            )
        if attempts >= MAX_WRONG_TRIES:
            return VerifyResult(VerifyOutcome.VOID)
        return VerifyResult(VerifyOutcome.WRONG, tries_left=MAX_WRONG_TRIES - attempts)
