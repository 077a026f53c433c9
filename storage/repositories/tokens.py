"""`kis.tokenstore.TokenStore` on the database: access tokens and approval keys.

Rows are keyed by the SHA-256 of the app key (never the key itself) and the value is
encrypted with that identity as associated data.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlmodel import col

from kis.env import Environment
from kis.secret import Secret
from kis.tokenstore import CredentialKind, StoredCredential
from storage import aad
from storage.crypto import SecretBox, hash_token
from storage.db import Database
from storage.models import KisCredential
from storage.repositories._sql import upsert


class SqlTokenStore:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    async def load(
        self, kind: CredentialKind, app_key: str, env: Environment
    ) -> StoredCredential | None:
        key_hash = hash_token(app_key)
        async with self._db.session() as session:
            row = (
                await session.execute(
                    select(KisCredential).where(
                        col(KisCredential.kind) == CredentialKind(kind).value,
                        col(KisCredential.app_key_hash) == key_hash,
                        col(KisCredential.environment) == Environment(env).value,
                    )
                )
            ).scalar_one_or_none()
        if row is None:
            return None
        value = self._box.decrypt(
            row.value_enc, aad.kis_credential(row.kind, key_hash, row.environment)
        )
        return StoredCredential(
            value=Secret(value), expires_at=row.expires_at, issued_at=row.issued_at
        )

    async def save(
        self, kind: CredentialKind, app_key: str, env: Environment, cred: StoredCredential
    ) -> None:
        kind_value = CredentialKind(kind).value
        env_value = Environment(env).value
        key_hash = hash_token(app_key)
        values: dict[str, object] = {
            "kind": kind_value,
            "app_key_hash": key_hash,
            "environment": env_value,
            "value_enc": self._box.encrypt(
                cred.value.reveal(), aad.kis_credential(kind_value, key_hash, env_value)
            ),
            "issued_at": cred.issued_at,
            "expires_at": cred.expires_at,
        }
        async with self._db.transaction() as session:
            await session.execute(
                upsert(
                    self._db.dialect,
                    KisCredential,
                    values,
                    ["kind", "app_key_hash", "environment"],
                    ["value_enc", "issued_at", "expires_at"],
                )
            )

    async def delete(self, kind: CredentialKind, app_key: str, env: Environment) -> None:
        async with self._db.transaction() as session:
            await session.execute(
                delete(KisCredential).where(
                    col(KisCredential.kind) == CredentialKind(kind).value,
                    col(KisCredential.app_key_hash) == hash_token(app_key),
                    col(KisCredential.environment) == Environment(env).value,
                )
            )
