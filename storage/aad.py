"""Associated data binding each ciphertext to its table, column and row.

A ciphertext copied to another row or column no longer matches and fails to decrypt.
Identities used here never change for the life of a row.
"""

from __future__ import annotations


def webhook_token(telegram_id: int) -> str:
    return f"users.webhook_token_enc:{telegram_id}"


def app_key(user_id: int, environment: str, account_id: int | None = None) -> str:
    """`account_id` None: a set sealed before accounts existed (one set per environment)."""
    return f"key_sets.app_key_enc:{user_id}:{environment}" + _account(account_id)


def app_secret(user_id: int, environment: str, account_id: int | None = None) -> str:
    return f"key_sets.app_secret_enc:{user_id}:{environment}" + _account(account_id)


def _account(account_id: int | None) -> str:
    return "" if account_id is None else f":{account_id}"


def kis_credential(kind: str, app_key_hash: str, environment: str) -> str:
    return f"kis_credentials.value_enc:{kind}:{app_key_hash}:{environment}"


def conversation(key: str) -> str:
    return f"conversations.data_enc:{key}"


def totp_secret(user_id: int) -> str:
    return f"totp_secrets.secret_enc:{user_id}"
