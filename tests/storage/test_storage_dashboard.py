"""Storage for the dashboard: the 0004 migration on a database holding data, usernames,
web sessions (hashed ids, expiry, CSRF), and the shared sign-in rate buckets."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, bindparam, text

from kis.env import Environment
from storage.crypto import hash_token
from storage.db import Database, alembic_config
from storage.facade import Storage
from storage.types import UtcDateTime

from .conftest import FakeClock, Target


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def test_dashboard_migration_keeps_users_made_by_an_older_schema(target: Target) -> None:
    db = Database.create(target.url, schema=target.schema)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_upgrade, "0001")
            await conn.execute(text(
                "INSERT INTO users (telegram_id, chat_id, language, active_environment, paused,"
                " webhook_token_hash, webhook_token_enc, created_at, updated_at) VALUES"
                " (42, 42, 'en', 'paper', false, 'h', :blob, :now, :now)"
            ).bindparams(bindparam("now", type_=UtcDateTime)),
                {"blob": b"x", "now": datetime(2026, 1, 1, tzinfo=UTC)})
        await db.migrate()  # what a start-up of the new version does
        async with db.engine.connect() as conn:
            rows = (await conn.execute(
                text("SELECT telegram_id, language, username FROM users")
            )).all()
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert rows == [(42, "en", None)]
        assert version == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]
    finally:
        await db.dispose()


async def test_username_is_remembered_normalized_and_moves_to_its_newest_holder(
    store: Storage,
) -> None:
    first = await store.users.get_or_create(1, 1, "ko", username="Trader_Kim")
    assert first.username == "trader_kim"
    assert (await store.users.by_username("@TRADER_KIM")) == first
    # Telegram usernames can move to another account: only the newest holder keeps it.
    second = await store.users.get_or_create(2, 2, "ko", username="trader_kim")
    found = await store.users.by_username("trader_kim")
    assert found is not None and found.id == second.id
    assert (await store.users.get(first.id)).username is None  # type: ignore[union-attr]
    # A user who changes theirs is found by the new one only.
    await store.users.get_or_create(2, 2, "ko", username="new_name")
    assert await store.users.by_username("trader_kim") is None
    assert await store.users.by_username("no") is None  # too short to be a username


async def test_web_session_id_is_stored_hashed_and_expires_after_its_ttl(
    store: Storage, clock: FakeClock
) -> None:
    user = await store.users.get_or_create(7, 7)
    new = await store.web_sessions.create(user.id, "telegram")
    async with store.db.session() as session:
        stored = (await session.execute(text("SELECT id_hash FROM web_sessions"))).scalars().all()
    assert stored == [hash_token(new.session_id)]
    assert new.session_id not in repr(new) and new.csrf_token not in repr(new)

    active = await store.web_sessions.resolve(new.session_id)
    assert active is not None and active.user_id == user.id
    assert active.csrf_token == new.csrf_token and active.csrf_ok(new.csrf_token)
    assert not active.csrf_ok(None) and not active.csrf_ok("x" * 64)
    assert await store.web_sessions.resolve("not-a-session") is None

    clock.advance(timedelta(hours=12).total_seconds() - 1)
    assert await store.web_sessions.resolve(new.session_id) is not None
    clock.advance(1)
    assert await store.web_sessions.resolve(new.session_id) is None


async def test_web_sessions_end_one_or_all(store: Storage) -> None:
    user = await store.users.get_or_create(8, 8)
    a = await store.web_sessions.create(user.id, "code")
    b = await store.web_sessions.create(user.id, "telegram")
    assert a.csrf_token != b.csrf_token
    assert await store.web_sessions.end(a.session_id)
    assert await store.web_sessions.resolve(a.session_id) is None
    assert await store.web_sessions.resolve(b.session_id) is not None
    assert await store.web_sessions.end_all(user.id) == 1
    assert await store.web_sessions.resolve(b.session_id) is None


async def test_csrf_token_is_the_same_on_another_instance_with_the_same_master_key(
    target: Target, store: Storage, key1: bytes, clock: FakeClock
) -> None:
    user = await store.users.get_or_create(9, 9)
    new = await store.web_sessions.create(user.id, "telegram")
    other = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        active = await other.web_sessions.resolve(new.session_id)
        assert active is not None and active.csrf_token == new.csrf_token
    finally:
        await other.close()
    stranger = await Storage.open(
        target.url, [os.urandom(32)], schema=target.schema, clock=clock
    )
    try:
        active = await stranger.web_sessions.resolve(new.session_id)
        assert active is not None and active.csrf_token != new.csrf_token
    finally:
        await stranger.close()


async def test_rate_bucket_allows_the_limit_then_refuses_until_the_window_ends(
    store: Storage, clock: FakeClock
) -> None:
    window = timedelta(minutes=10)
    results = [await store.rate_buckets.hit("ip:a", 3, window) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert results[-1].hits == 4 and 0 < results[-1].retry_after <= 600
    assert (await store.rate_buckets.hit("ip:b", 3, window)).allowed  # buckets are apart
    clock.advance(window.total_seconds())
    assert (await store.rate_buckets.hit("ip:a", 3, window)).allowed
    assert await store.rate_buckets.sweep(timedelta(minutes=5)) == 2  # the ended windows


async def test_concurrent_hits_are_all_counted(store: Storage) -> None:
    window = timedelta(minutes=1)
    results = await asyncio.gather(
        *(store.rate_buckets.hit("user:x", 5, window) for _ in range(12))
    )
    assert sorted(r.hits for r in results) == list(range(1, 13))
    assert sum(r.allowed for r in results) == 5


async def test_check_progress_leaves_validated_keys_validated(store: Storage) -> None:
    """A re-check's progress (verdict None) must not block orders while it runs."""
    user = await store.users.get_or_create(10, 10)
    await store.key_sets.save(
        user.id, Environment.PAPER, app_key="PS" + "k" * 30, app_secret="s" * 64,
        cano="12345678", product_code="01", hts_id="kim",
    )
    await store.key_sets.record_checks(user.id, Environment.PAPER, {"token": "ok"}, True)
    await store.key_sets.record_checks(user.id, Environment.PAPER, {"token": "pending"}, None)
    keys = await store.key_sets.get(user.id, Environment.PAPER)
    assert keys is not None and keys.validated and keys.check_results == {"token": "pending"}
    await store.key_sets.record_checks(user.id, Environment.PAPER, {"token": "bad"}, False)
    assert not (await store.key_sets.get(user.id, Environment.PAPER)).validated  # type: ignore[union-attr]
