"""Where issued access tokens and approval keys live between restarts.

The KIS client only needs this protocol; `storage/` implements it (encrypted at
rest), `MemoryTokenStore` serves tests and the simulator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from kis.env import Environment
from kis.secret import Secret


class CredentialKind(enum.StrEnum):
    ACCESS_TOKEN = "access_token"
    APPROVAL_KEY = "approval_key"


@dataclass(frozen=True, slots=True)
class StoredCredential:
    value: Secret
    expires_at: datetime  # timezone-aware UTC
    issued_at: datetime  # timezone-aware UTC


class TokenStore(Protocol):
    async def load(
        self, kind: CredentialKind, app_key: str, env: Environment
    ) -> StoredCredential | None: ...

    async def save(
        self, kind: CredentialKind, app_key: str, env: Environment, cred: StoredCredential
    ) -> None: ...

    async def delete(self, kind: CredentialKind, app_key: str, env: Environment) -> None: ...


class MemoryTokenStore:
    def __init__(self) -> None:
        self._items: dict[tuple[CredentialKind, str, Environment], StoredCredential] = {}

    async def load(
        self, kind: CredentialKind, app_key: str, env: Environment
    ) -> StoredCredential | None:
        return self._items.get((kind, app_key, env))

    async def save(
        self, kind: CredentialKind, app_key: str, env: Environment, cred: StoredCredential
    ) -> None:
        self._items[(kind, app_key, env)] = cred

    async def delete(self, kind: CredentialKind, app_key: str, env: Environment) -> None:
        self._items.pop((kind, app_key, env), None)
