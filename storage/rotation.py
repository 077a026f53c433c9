"""Re-encrypts every stored secret under the current (first) master key.

Run at start-up when several keys are configured; afterwards the old keys can be
removed from `MOAHOOK_MASTER_KEY`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy import ColumnElement, select, update
from sqlmodel import SQLModel, col

from storage import aad
from storage.crypto import SecretBox
from storage.db import Database
from storage.models import Conversation, KeySet, KisCredential, TotpSecret, User

log = logging.getLogger(__name__)

_BATCH: Final = 200


# Every encrypted column, with the associated data its rows were sealed under.
_TARGETS: Final[tuple[tuple[type[SQLModel], str, Callable[[SQLModel], str]], ...]] = (
    (User, "webhook_token_enc", lambda r: aad.webhook_token(_int(r, "telegram_id"))),
    (KeySet, "app_key_enc", lambda r: aad.app_key(*_key_set_identity(r))),
    (KeySet, "app_secret_enc", lambda r: aad.app_secret(*_key_set_identity(r))),
    (
        KisCredential,
        "value_enc",
        lambda r: aad.kis_credential(
            _str(r, "kind"), _str(r, "app_key_hash"), _str(r, "environment")
        ),
    ),
    (Conversation, "data_enc", lambda r: aad.conversation(_str(r, "key"))),
    (TotpSecret, "secret_enc", lambda r: aad.totp_secret(_int(r, "user_id"))),
)


async def reencrypt_all(db: Database, box: SecretBox) -> int:
    """Returns how many values were re-encrypted (0 when all are current)."""
    total = 0
    for model, column, aad_for in _TARGETS:
        total += await _rotate(db, box, model, column, aad_for)
    if total:
        log.info("re-encrypted %d stored secrets under the current master key", total)
    return total


async def _rotate(
    db: Database,
    box: SecretBox,
    model: type[SQLModel],
    column: str,
    aad_for: Callable[[SQLModel], str],
) -> int:
    table = model.__table__  # type: ignore[attr-defined]  # SQLModel table
    (key_name,) = [c.key for c in table.primary_key.columns]  # every table: one key column
    key_col: ColumnElement[object] = getattr(model, key_name)
    blob_col: ColumnElement[bytes] = getattr(model, column)
    done = 0
    last: object = None
    while True:
        query = select(model).where(col(blob_col).is_not(None))
        if last is not None:
            query = query.where(key_col > last)
        async with db.session() as session:
            rows: Sequence[SQLModel] = (
                await session.execute(query.order_by(key_col).limit(_BATCH))
            ).scalars().all()
        if not rows:
            return done
        last = getattr(rows[-1], key_name)
        changes: list[tuple[object, bytes, bytes]] = []
        for row in rows:
            blob = bytes(getattr(row, column))
            if box.needs_rotation(blob):
                plain = box.decrypt(blob, aad_for(row))
                changes.append((getattr(row, key_name), blob, box.encrypt(plain, aad_for(row))))
        if not changes:
            continue
        async with db.transaction() as session:
            for key, old, new in changes:
                # Compare-and-set: a value rewritten meanwhile is already current.
                await session.execute(
                    update(model).where(key_col == key, col(blob_col) == old).values({column: new})
                )
        done += len(changes)


def _key_set_identity(row: SQLModel) -> tuple[int, str, int | None]:
    """What a key set's secrets are sealed with: its user, environment and (once accounts
    existed when it was saved) its account."""
    account = _int(row, "account_id") if getattr(row, "account_bound", False) else None
    return _int(row, "user_id"), _str(row, "environment"), account


def _int(row: SQLModel, name: str) -> int:
    value = getattr(row, name)
    if not isinstance(value, int):  # pragma: no cover - schema guarantees it
        raise TypeError(f"{name} is not an integer")
    return value


def _str(row: SQLModel, name: str) -> str:
    value = getattr(row, name)
    if not isinstance(value, str):  # pragma: no cover - schema guarantees it
        raise TypeError(f"{name} is not text")
    return value
