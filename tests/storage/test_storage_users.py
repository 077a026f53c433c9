"""Users, webhook tokens, key sets and the token store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from kis.env import Environment
from kis.secret import Secret
from kis.tokenstore import CredentialKind, StoredCredential, TokenStore
from storage.errors import UnknownUser
from storage.facade import Storage


async def test_get_or_create_is_idempotent_and_concurrent_safe(store: Storage) -> None:
    results = await asyncio.gather(
        *(store.users.get_or_create(telegram_id=5_555_555_555, chat_id=5_555_555_555)
          for _ in range(20))
    )
    assert len({user.id for user in results}) == 1
    user = results[0]
    assert user.telegram_id == 5_555_555_555  # above 2**31: BigInteger
    assert user.language == "ko" and user.active_environment is Environment.PAPER
    assert not user.paused and user.created_at.tzinfo is not None
    assert await store.users.count() == 1


async def test_webhook_token_lookup_display_and_rotation(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=42, chat_id=42, language="en")
    token = await store.users.webhook_token(user.id)
    assert len(token) >= 32  # 24 random bytes, URL-safe
    found = await store.users.by_webhook_token(token)
    assert found is not None and found.id == user.id
    assert await store.users.by_webhook_token(token + "x") is None
    assert await store.users.by_webhook_token("") is None

    new = await store.users.rotate_webhook_token(user.id)
    assert new != token
    assert await store.users.by_webhook_token(token) is None
    assert (await store.users.by_webhook_token(new)) == found
    assert await store.users.webhook_token(user.id) == new


async def test_tokens_differ_between_users(store: Storage) -> None:
    a = await store.users.get_or_create(telegram_id=1, chat_id=1)
    b = await store.users.get_or_create(telegram_id=2, chat_id=2)
    assert await store.users.webhook_token(a.id) != await store.users.webhook_token(b.id)


async def test_settings_language_environment_pause(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=43, chat_id=43)
    await store.users.set_language(user.id, "en")
    await store.users.set_active_environment(user.id, Environment.REAL)
    await store.users.set_paused(user.id, True)
    again = await store.users.get(user.id)
    assert again is not None
    assert (again.language, again.active_environment, again.paused) == (
        "en", Environment.REAL, True)
    with pytest.raises(ValueError, match="language"):
        await store.users.set_language(user.id, "fr")
    with pytest.raises(UnknownUser):
        await store.users.set_paused(999_999, True)
    with pytest.raises(UnknownUser):
        await store.users.webhook_token(999_999)


async def test_chat_id_follows_latest_contact(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=44, chat_id=44)
    moved = await store.users.get_or_create(telegram_id=44, chat_id=-100)
    assert moved.id == user.id and moved.chat_id == -100


async def test_key_sets_per_environment_checks_and_delete(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=45, chat_id=45)
    await store.key_sets.save(user.id, Environment.PAPER, app_key="paperkey", app_secret="ps",
                              cano="12345678", product_code="01", hts_id="hts1")
    await store.key_sets.save(user.id, Environment.REAL, app_key=Secret("realkey"),
                              app_secret=Secret("rs"), cano="87654321", product_code="22",
                              hts_id="hts2")
    paper = await store.key_sets.get(user.id, Environment.PAPER)
    assert paper is not None and paper.account == "12345678-01" and not paper.validated
    assert await store.key_sets.record_checks(
        user.id, Environment.PAPER, {"token": "ok", "account": "ok", "fill_notice": "ok"}, True
    )
    paper = await store.key_sets.get(user.id, Environment.PAPER)
    assert paper is not None and paper.validated and paper.checked_at is not None
    assert paper.check_results == {"token": "ok", "account": "ok", "fill_notice": "ok"}

    # Replacing keys drops the validation: the new set must be checked again.
    await store.key_sets.save(user.id, Environment.PAPER, app_key="paperkey2", app_secret="ps2",
                              cano="12345678", product_code="01", hts_id="hts1")
    paper = await store.key_sets.get(user.id, Environment.PAPER)
    assert paper is not None and not paper.validated and paper.check_results is None
    assert paper.app_key.reveal() == "paperkey2"

    assert [k.environment for k in await store.key_sets.for_user(user.id)] == [
        Environment.PAPER, Environment.REAL]
    assert await store.key_sets.delete_all(user.id) == 2
    assert await store.key_sets.get(user.id, Environment.REAL) is None
    assert not await store.key_sets.record_checks(user.id, Environment.REAL, {}, True)


async def test_validated_for_active_lists_only_the_active_validated_set(store: Storage) -> None:
    users = [await store.users.get_or_create(telegram_id=100 + i, chat_id=100 + i)
             for i in range(3)]
    for user in users:
        for env in Environment:
            await store.key_sets.save(user.id, env, app_key=f"k{user.id}{env}",
                                      app_secret="s", cano="12345678", product_code="01",
                                      hts_id=f"h{user.id}")
    await store.key_sets.record_checks(users[0].id, Environment.PAPER, {}, True)  # active
    await store.key_sets.record_checks(users[1].id, Environment.REAL, {}, True)  # not active
    await store.key_sets.record_checks(users[2].id, Environment.REAL, {}, True)
    await store.users.set_active_environment(users[2].id, Environment.REAL)
    active = await store.key_sets.validated_for_active()
    assert [(a.user.id, a.keys.environment) for a in active] == [
        (users[0].id, Environment.PAPER), (users[2].id, Environment.REAL)]
    assert active[1].keys.app_key.reveal() == f"k{users[2].id}real"


async def test_sql_token_store_implements_the_protocol(store: Storage) -> None:
    tokens: TokenStore = store.tokens
    now = datetime.now(UTC).replace(microsecond=0)
    first = StoredCredential(Secret("tok-1"), expires_at=now + timedelta(hours=24), issued_at=now)
    assert await tokens.load(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER) is None
    await tokens.save(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER, first)
    loaded = await tokens.load(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER)
    assert loaded == first
    assert loaded.expires_at.tzinfo is not None
    # Kind, app key and environment each separate the entries.
    assert await tokens.load(CredentialKind.APPROVAL_KEY, "appkey", Environment.PAPER) is None
    assert await tokens.load(CredentialKind.ACCESS_TOKEN, "appkey", Environment.REAL) is None
    assert await tokens.load(CredentialKind.ACCESS_TOKEN, "other", Environment.PAPER) is None
    second = StoredCredential(Secret("tok-2"), expires_at=now + timedelta(hours=48),
                              issued_at=now + timedelta(hours=24))
    await tokens.save(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER, second)
    assert await tokens.load(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER) == second
    await tokens.delete(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER)
    assert await tokens.load(CredentialKind.ACCESS_TOKEN, "appkey", Environment.PAPER) is None


async def test_datetimes_round_trip_as_aware_utc(store: Storage) -> None:
    from zoneinfo import ZoneInfo

    seoul = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Seoul"))
    cred = StoredCredential(Secret("t"), expires_at=seoul, issued_at=seoul)
    await store.tokens.save(CredentialKind.ACCESS_TOKEN, "k", Environment.REAL, cred)
    loaded = await store.tokens.load(CredentialKind.ACCESS_TOKEN, "k", Environment.REAL)
    assert loaded is not None
    assert loaded.expires_at == seoul and loaded.expires_at.utcoffset() == timedelta(0)
