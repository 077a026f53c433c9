"""Secrets at rest: raw scans, tamper, rotation, missing keys (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import col

from kis.env import Environment
from kis.secret import Secret
from kis.tokenstore import CredentialKind, StoredCredential
from storage.crypto import DecryptionError
from storage.facade import Storage
from storage.models import KeySet, User
from storage.rotation import reencrypt_all

from .conftest import FakeClock, Target

APP_KEY = "PSappKEYplain0123456789abcdefXYZ"
APP_SECRET = "secretPLAINTEXTvalue+/=" + "Q" * 120
ACCESS_TOKEN = "eyJhbGciOiJIUzI1NiJ9.plainACCESStokenBODY.signatureXYZ"
APPROVAL_KEY = "approval-key-plain-0f1e2d3c4b5a"
TABLES = ("users", "key_sets", "kis_credentials", "alerts", "orders", "fills", "outbox",
          "two_factor_codes", "audit_log")


async def _populate(store: Storage) -> tuple[int, str]:
    user = await store.users.get_or_create(telegram_id=7_000_000_001, chat_id=7_000_000_001)
    webhook_token = await store.users.webhook_token(user.id)
    await store.key_sets.save(
        user.id, Environment.PAPER, app_key=Secret(APP_KEY), app_secret=Secret(APP_SECRET),
        cano="12345678", product_code="01", hts_id="htsuser",
    )
    now = datetime.now(UTC)
    for kind, value in ((CredentialKind.ACCESS_TOKEN, ACCESS_TOKEN),
                        (CredentialKind.APPROVAL_KEY, APPROVAL_KEY)):
        await store.tokens.save(kind, APP_KEY, Environment.PAPER, StoredCredential(
            value=Secret(value), expires_at=now + timedelta(hours=24), issued_at=now))
    await store.audit.record(user.id, "keys.saved", {"app_secret": APP_SECRET, "env": "paper"})
    return user.id, webhook_token


def _needles(webhook_token: str) -> list[bytes]:
    plains = [APP_KEY, APP_SECRET, ACCESS_TOKEN, APPROVAL_KEY, webhook_token]
    out: list[bytes] = []
    for plain in plains:
        out += [plain.encode(), plain.encode().hex().encode(), plain[:16].encode()]
    return out


async def _raw_dump(store: Storage, target: Target) -> bytes:
    if target.backend == "sqlite":
        async with store.db.engine.connect() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        assert target.sqlite_path is not None
        data = target.sqlite_path.read_bytes()
        wal = target.sqlite_path.with_name(target.sqlite_path.name + "-wal")
        if wal.exists():
            data += wal.read_bytes()
        return data
    chunks: list[bytes] = []
    async with store.db.engine.connect() as conn:
        for table in TABLES:
            rows = (await conn.execute(text(f"SELECT t::text FROM {table} t"))).scalars().all()
            chunks += [str(row).encode() for row in rows]
    return b"\n".join(chunks)


async def test_plaintext_secrets_never_reach_the_database(
    store: Storage, target: Target
) -> None:
    user_id, webhook_token = await _populate(store)
    raw = await _raw_dump(store, target)
    assert len(raw) > 1000  # the scan really saw the data
    for needle in _needles(webhook_token):
        assert needle not in raw, f"plaintext found in the raw database ({needle[:6]!r}…)"
    # …while the application reads every value back.
    keys = await store.key_sets.get(user_id, Environment.PAPER)
    assert keys is not None
    assert keys.app_key.reveal() == APP_KEY and keys.app_secret.reveal() == APP_SECRET
    assert APP_SECRET not in repr(keys)
    cred = await store.tokens.load(CredentialKind.ACCESS_TOKEN, APP_KEY, Environment.PAPER)
    assert cred is not None and cred.value.reveal() == ACCESS_TOKEN
    assert (await store.users.by_webhook_token(webhook_token)) is not None


async def test_ciphertext_copied_to_another_users_row_does_not_decrypt(store: Storage) -> None:
    alice = await store.users.get_or_create(telegram_id=1001, chat_id=1001)
    bob = await store.users.get_or_create(telegram_id=1002, chat_id=1002)
    for user, secret in ((alice, "alice-secret-" + "a" * 30), (bob, "bob-secret-" + "b" * 30)):
        await store.key_sets.save(user.id, Environment.PAPER, app_key="k" * 36,
                                  app_secret=secret, cano="12345678", product_code="01",
                                  hts_id="h")
    async with store.db.transaction() as session:
        alice_row = (await session.execute(
            KeySet.__table__.select().where(KeySet.__table__.c.user_id == alice.id)  # type: ignore[attr-defined]
        )).one()
        await session.execute(update(KeySet).where(col(KeySet.user_id) == bob.id).values(
            app_secret_enc=alice_row.app_secret_enc))
        alice_token_blob = (await session.execute(
            User.__table__.select().where(User.__table__.c.id == alice.id)  # type: ignore[attr-defined]
        )).one().webhook_token_enc
        await session.execute(update(User).where(col(User.id) == bob.id).values(
            webhook_token_enc=alice_token_blob))
    with pytest.raises(DecryptionError, match="does not belong to this row"):
        await store.key_sets.get(bob.id, Environment.PAPER)
    with pytest.raises(DecryptionError, match="does not belong to this row"):
        await store.users.webhook_token(bob.id)
    # Alice's own rows are untouched.
    alice_keys = await store.key_sets.get(alice.id, Environment.PAPER)
    assert alice_keys is not None and alice_keys.app_secret.reveal().startswith("alice-secret-")


async def test_paper_ciphertext_moved_to_real_row_does_not_decrypt(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1003, chat_id=1003)
    for env in Environment:
        await store.key_sets.save(user.id, env, app_key=f"{env}-key-" + "k" * 30,
                                  app_secret=f"{env}-secret-" + "s" * 30, cano="12345678",
                                  product_code="01", hts_id="h")
    async with store.db.transaction() as session:
        paper_blob = (await session.execute(
            KeySet.__table__.select().where(KeySet.__table__.c.environment == "paper")  # type: ignore[attr-defined]
        )).one().app_secret_enc
        await session.execute(update(KeySet).where(col(KeySet.environment) == "real").values(
            app_secret_enc=paper_blob))
    with pytest.raises(DecryptionError):
        await store.key_sets.get(user.id, Environment.REAL)


async def test_rotation_key1_then_key2_key1_then_key2_alone(
    target: Target, key1: bytes, key2: bytes, clock: FakeClock
) -> None:
    first = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        user_id, webhook_token = await _populate(first)
    finally:
        await first.close()

    # Old rows are readable with [key2, key1]; open() re-encrypts them under key2.
    rotated = await Storage.open(target.url, [key2, key1], schema=target.schema, clock=clock)
    try:
        keys = await rotated.key_sets.get(user_id, Environment.PAPER)
        assert keys is not None and keys.app_secret.reveal() == APP_SECRET
        assert await reencrypt_all(rotated.db, rotated.box) == 0  # open() already did it
    finally:
        await rotated.close()

    only_new = await Storage.open(target.url, [key2], schema=target.schema, clock=clock)
    try:
        keys = await only_new.key_sets.get(user_id, Environment.PAPER)
        assert keys is not None
        assert keys.app_key.reveal() == APP_KEY and keys.app_secret.reveal() == APP_SECRET
        assert await only_new.users.webhook_token(user_id) == webhook_token
        cred = await only_new.tokens.load(
            CredentialKind.APPROVAL_KEY, APP_KEY, Environment.PAPER
        )
        assert cred is not None and cred.value.reveal() == APPROVAL_KEY
    finally:
        await only_new.close()


async def test_reencrypt_all_counts_every_encrypted_value(
    target: Target, key1: bytes, key2: bytes, clock: FakeClock
) -> None:
    first = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        await _populate(first)
    finally:
        await first.close()
    # Built without open() so nothing is re-encrypted before we count.
    from storage.crypto import SecretBox
    from storage.db import Database

    db = Database.create(target.url, schema=target.schema)
    try:
        box = SecretBox([key2, key1])
        # webhook token + app key + app secret + access token + approval key
        assert await reencrypt_all(db, box) == 5
        assert await reencrypt_all(db, box) == 0
    finally:
        await db.dispose()


async def test_wrong_key_fails_clearly_never_garbage(
    target: Target, key1: bytes, key2: bytes, clock: FakeClock
) -> None:
    first = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        user_id, _ = await _populate(first)
    finally:
        await first.close()
    wrong = await Storage.open(target.url, [key2], schema=target.schema, clock=clock)
    try:
        with pytest.raises(DecryptionError, match="master key that is not configured") as e:
            await wrong.key_sets.get(user_id, Environment.PAPER)
        assert APP_SECRET not in str(e.value)
        with pytest.raises(DecryptionError, match="not configured"):
            await wrong.tokens.load(CredentialKind.ACCESS_TOKEN, APP_KEY, Environment.PAPER)
    finally:
        await wrong.close()


async def test_no_master_key_refuses_to_open(target: Target) -> None:
    from storage.crypto import MasterKeyError

    with pytest.raises(MasterKeyError, match="no master key"):
        await Storage.open(target.url, [], schema=target.schema)


async def test_audit_detail_is_scrubbed(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1004, chat_id=1004)
    await store.audit.record(user.id, "keys.saved", {
        "app_secret": APP_SECRET, "nested": {"token": ACCESS_TOKEN}, "env": "paper",
        "wrapped": Secret(APP_KEY),
    })
    (entry,) = await store.audit.recent(user.id)
    text_form = repr(entry.detail)
    for plain in (APP_SECRET, ACCESS_TOKEN, APP_KEY):
        assert plain not in text_form
    assert entry.detail["env"] == "paper"
