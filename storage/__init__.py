"""Persistence: SQLModel tables, encryption at rest, repositories, migrations.

Callers use `Storage.open(url, master_keys)` and its repositories; nothing outside
`storage/` touches sessions or tables.
"""

from storage.crypto import (
    DecryptionError,
    MasterKeyError,
    SecretBox,
    hash_code,
    hash_token,
    load_master_keys,
)
from storage.db import Database
from storage.errors import OrderAlreadyExists, StorageError, UnknownUser
from storage.facade import Storage
from storage.records import (
    AcceptResult,
    ActiveKeySet,
    AlertRecord,
    AlertStatus,
    AuditRecord,
    FillRecord,
    FillResult,
    KeySetRecord,
    OrderRecord,
    OrderStatus,
    OutboxMessage,
    OutboxStatus,
    UserRecord,
    VerifyOutcome,
    VerifyResult,
)
from storage.repositories import SqlTokenStore
from storage.rotation import reencrypt_all

__all__ = [
    "AcceptResult",
    "ActiveKeySet",
    "AlertRecord",
    "AlertStatus",
    "AuditRecord",
    "Database",
    "DecryptionError",
    "FillRecord",
    "FillResult",
    "KeySetRecord",
    "MasterKeyError",
    "OrderAlreadyExists",
    "OrderRecord",
    "OrderStatus",
    "OutboxMessage",
    "OutboxStatus",
    "SecretBox",
    "SqlTokenStore",
    "Storage",
    "StorageError",
    "UnknownUser",
    "UserRecord",
    "VerifyOutcome",
    "VerifyResult",
    "hash_code",
    "hash_token",
    "load_master_keys",
    "reencrypt_all",
]
