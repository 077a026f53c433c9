"""Dashboard sessions: in the database so that any instance accepts them (SPEC 12, 14).

Only the SHA-256 of a session id is stored. The CSRF token is derived from the
session id with a key of the master key's, so it needs no column and every instance
computes the same one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, insert, select
from sqlmodel import col

from storage.crypto import hash_token
from storage.db import Database
from storage.models import WebSession
from storage.repositories._sql import Clock, rowcount
from storage.types import utcnow

SESSION_TTL: Final = timedelta(hours=12)
_ID_BYTES: Final = 32
_MAX_ID_CHARS: Final = 128
_CSRF_LABEL: Final = b"moahook/dashboard-csrf/v1"


@dataclass(frozen=True, slots=True, repr=False)
class NewSession:
    session_id: str  # goes into the cookie, nowhere else
    csrf_token: str
    user_id: int
    expires_at: datetime

    def __repr__(self) -> str:
        return f"NewSession(user_id={self.user_id}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True, slots=True, repr=False)
class ActiveSession:
    user_id: int
    csrf_token: str
    via: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"ActiveSession(user_id={self.user_id}, via={self.via!r})"

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.csrf_token.encode())


class WebSessions:
    def __init__(
        self, db: Database, pepper: bytes, clock: Clock = utcnow, ttl: timedelta = SESSION_TTL
    ) -> None:
        self._db = db
        self._csrf_key = hmac.new(pepper, _CSRF_LABEL, hashlib.sha256).digest()
        self._clock = clock
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"WebSessions(ttl={self.ttl})"

    def _csrf(self, session_id: str) -> str:
        return hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).hexdigest()

    async def create(self, user_id: int, via: str) -> NewSession:
        """A fresh session; expired sessions of everyone are swept on the way."""
        now = self._clock()
        session_id = secrets.token_urlsafe(_ID_BYTES)
        expires = now + self.ttl
        async with self._db.transaction() as session:
            await session.execute(delete(WebSession).where(col(WebSession.expires_at) <= now))
            await session.execute(
                insert(WebSession).values(
                    user_id=user_id, id_hash=hash_token(session_id), via=via,
                    created_at=now, expires_at=expires,
                )
            )
        return NewSession(session_id, self._csrf(session_id), user_id, expires)

    async def resolve(self, session_id: str | None) -> ActiveSession | None:
        """The live session behind a cookie value; None for unknown, malformed or expired."""
        if not session_id or len(session_id) > _MAX_ID_CHARS:
            return None
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(WebSession).where(col(WebSession.id_hash) == hash_token(session_id))
                )
            ).scalar_one_or_none()
        if row is None or row.expires_at <= self._clock():
            return None
        return ActiveSession(row.user_id, self._csrf(session_id), row.via, row.expires_at)

    async def end(self, session_id: str) -> bool:
        if not session_id or len(session_id) > _MAX_ID_CHARS:
            return False
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(WebSession).where(col(WebSession.id_hash) == hash_token(session_id))
            )
        return rowcount(result) > 0

    async def end_all(self, user_id: int) -> int:
        """Signs the user out everywhere (their keys and tokens were deleted)."""
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(WebSession).where(col(WebSession.user_id) == user_id)
            )
        return rowcount(result)

    async def count(self, user_id: int) -> int:
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(col(WebSession.id)).where(col(WebSession.user_id) == user_id)
                )
            ).all()
        return len(rows)
