"""Users: identity, language, active environment, pause, the webhook token."""

from __future__ import annotations

import re
import secrets
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from kis.env import Environment
from storage import aad
from storage.account_names import FIRST_ACCOUNT
from storage.crypto import SecretBox, hash_token
from storage.db import Database
from storage.errors import UnknownUser
from storage.models import AccountRow, User
from storage.records import UserRecord
from storage.repositories._sql import (
    ChangeListener,
    ChangeListeners,
    Clock,
    insert_ignoring,
    require_id,
    rowcount,
)
from storage.signals import Signals
from storage.types import utcnow

LANGUAGES: Final = ("ko", "en")
TOKEN_BYTES: Final = 24  # 192 bits; the SPEC asks for at least 128
_MAX_TOKEN_CHARS: Final = 256
_USERNAME: Final = re.compile(r"[a-z0-9_]{4,32}")


def new_webhook_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def user_record(row: User) -> UserRecord:
    return UserRecord(
        id=require_id(row.id),
        telegram_id=row.telegram_id,
        chat_id=row.chat_id,
        language=row.language,
        active_environment=Environment(row.active_environment),
        paused=row.paused,
        created_at=row.created_at,
        username=row.username,
    )


def normalize_username(username: str | None) -> str | None:
    """`@Some_Name` → `some_name`; None for nothing usable (Telegram: 4-32 of [A-Za-z0-9_])."""
    if username is None:
        return None
    name = username.strip().removeprefix("@").lower()
    if not _USERNAME.fullmatch(name):
        return None
    return name


class Users:
    def __init__(
        self, db: Database, box: SecretBox, clock: Clock = utcnow, signals: Signals | None = None
    ) -> None:
        self._db = db
        self._box = box
        self._clock = clock
        self._changes = ChangeListeners(signals)

    def on_change(self, listener: ChangeListener) -> None:
        """`listener(user_id)` after a user's chat, language, environment or pause changed."""
        self._changes.add(listener)

    async def get_or_create(
        self,
        telegram_id: int,
        chat_id: int,
        language: str = "ko",
        *,
        username: str | None = None,
    ) -> UserRecord:
        """The user for this Telegram id, created (with a webhook token) on first contact.

        `username` (as Telegram sent it) is remembered, so the dashboard's browser sign-in
        can find the user by it; a username another user held before moves to this one."""
        _check_language(language)
        name = normalize_username(username)
        existing = await self.by_telegram_id(telegram_id)
        if existing is not None:
            if existing.chat_id == chat_id and (name is None or existing.username == name):
                return existing
            async with self._db.transaction() as session:
                changes: dict[str, object] = {"chat_id": chat_id, "updated_at": self._clock()}
                if name is not None:
                    await _release_username(session, name, telegram_id)
                    changes["username"] = name
                await session.execute(
                    update(User).where(col(User.telegram_id) == telegram_id).values(**changes)
                )
                await self._changes.signal_in(session, existing.id)
            if existing.chat_id != chat_id:
                self._changes.notify(existing.id)
        else:
            token = new_webhook_token()
            now = self._clock()
            values: dict[str, object] = {
                "telegram_id": telegram_id,
                "chat_id": chat_id,
                "language": language,
                "active_environment": Environment.PAPER.value,
                "paused": False,
                "webhook_token_hash": hash_token(token),
                "webhook_token_enc": self._box.encrypt(token, aad.webhook_token(telegram_id)),
                "created_at": now,
                "updated_at": now,
                "username": name,
            }
            async with self._db.transaction() as session:
                if name is not None:
                    await _release_username(session, name, telegram_id)
                # A concurrent first contact may win: then theirs is the one.
                await session.execute(
                    insert_ignoring(self._db.dialect, User, values, ["telegram_id"])
                )
                user_id = (
                    await session.execute(
                        select(col(User.id)).where(col(User.telegram_id) == telegram_id)
                    )
                ).scalar_one()
                # Every user has an account from the start: `main`, the default.
                await session.execute(
                    insert_ignoring(
                        self._db.dialect,
                        AccountRow,
                        {"user_id": user_id, "name": FIRST_ACCOUNT,
                         "active_environment": Environment.PAPER.value, "is_default": True,
                         "created_at": now, "updated_at": now},
                        ["user_id", "name"],
                    )
                )
        created = await self.by_telegram_id(telegram_id)
        if created is None:  # pragma: no cover - inserted or found just above
            raise LookupError(f"user for telegram id {telegram_id} vanished")
        return created

    async def get(self, user_id: int) -> UserRecord | None:
        async with self._db.session() as session:
            row = await session.get(User, user_id)
            return None if row is None else user_record(row)

    async def by_telegram_id(self, telegram_id: int) -> UserRecord | None:
        async with self._db.session() as session:
            row = (
                await session.execute(select(User).where(col(User.telegram_id) == telegram_id))
            ).scalar_one_or_none()
            return None if row is None else user_record(row)

    async def by_webhook_token(self, token: str) -> UserRecord | None:
        """Lookup by the token's hash: the token itself is never compared or stored."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(User).where(col(User.webhook_token_hash) == hash_token(token))
                )
            ).scalar_one_or_none()
            return None if row is None else user_record(row)

    async def by_username(self, username: str) -> UserRecord | None:
        name = normalize_username(username)
        if name is None:
            return None
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(User)
                    .where(col(User.username) == name)
                    .order_by(col(User.updated_at).desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            return None if row is None else user_record(row)

    async def webhook_token(self, user_id: int) -> str:
        """The current token in clear, for showing the user their webhook URL."""
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(col(User.telegram_id), col(User.webhook_token_enc)).where(
                        col(User.id) == user_id
                    )
                )
            ).one_or_none()
        if row is None:
            raise UnknownUser(user_id)
        telegram_id, blob = row
        return self._box.decrypt(blob, aad.webhook_token(telegram_id))

    async def rotate_webhook_token(self, user_id: int) -> str:
        """Issues a new token (the old one stops working at once) and returns it."""
        token = new_webhook_token()
        async with self._db.transaction() as session:
            telegram_id = (
                await session.execute(select(col(User.telegram_id)).where(col(User.id) == user_id))
            ).scalar_one_or_none()
            if telegram_id is None:
                raise UnknownUser(user_id)
            await session.execute(
                update(User)
                .where(col(User.id) == user_id)
                .values(
                    webhook_token_hash=hash_token(token),
                    webhook_token_enc=self._box.encrypt(token, aad.webhook_token(telegram_id)),
                    updated_at=self._clock(),
                )
            )
            await self._changes.signal_in(session, user_id)  # caches drop the old token
        self._changes.notify(user_id)
        return token

    async def set_language(self, user_id: int, language: str) -> None:
        _check_language(language)
        await self._set(user_id, language=language)

    async def set_active_environment(self, user_id: int, environment: Environment) -> None:
        """The environment of the user's default account (see `storage.repositories.accounts`)."""
        env = Environment(environment).value
        now = self._clock()
        async with self._db.transaction() as session:
            await session.execute(
                update(AccountRow)
                .where(col(AccountRow.user_id) == user_id, col(AccountRow.is_default))
                .values(active_environment=env, updated_at=now)
            )
            result = await session.execute(
                update(User).where(col(User.id) == user_id)
                .values(active_environment=env, updated_at=now)
            )
            if rowcount(result) == 0:
                raise UnknownUser(user_id)
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)

    async def set_paused(self, user_id: int, paused: bool) -> None:
        await self._set(user_id, paused=paused)

    async def count(self) -> int:
        async with self._db.session() as session:
            return int(
                (await session.execute(select(func.count()).select_from(User))).scalar_one()
            )

    async def _set(self, user_id: int, **values: object) -> None:
        async with self._db.transaction() as session:
            result = await session.execute(
                update(User)
                .where(col(User.id) == user_id)
                .values(**values, updated_at=self._clock())
            )
            if rowcount(result) == 0:
                raise UnknownUser(user_id)
            await self._changes.signal_in(session, user_id)
        self._changes.notify(user_id)


async def _release_username(session: AsyncSession, name: str, telegram_id: int) -> None:
    """Telegram usernames move between accounts: only the newest holder keeps one."""
    await session.execute(
        update(User)
        .where(col(User.username) == name, col(User.telegram_id) != telegram_id)
        .values(username=None)
    )


def _check_language(language: str) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
