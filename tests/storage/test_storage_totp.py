"""Authenticator-app (TOTP) second factor in storage: enrolment confirmed by a first
code, replay protection, lock-out, the secret encrypted and row-bound, disabling, and
which actions take it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import text, update
from sqlmodel import col

from storage.crypto import DecryptionError
from storage.facade import Storage
from storage.models import TotpSecret
from storage.records import VerifyOutcome
from storage.repositories.totp import STEP_SECONDS
from storage.rotation import reencrypt_all

from .conftest import FakeClock, Target


def code_at(secret: str, clock: FakeClock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now + timedelta(seconds=steps * STEP_SECONDS))


async def enrolled_user(
    store: Storage, clock: FakeClock, telegram_id: int = 42
) -> tuple[int, str]:
    user = await store.users.get_or_create(telegram_id, telegram_id)
    enrolment = await store.totp.begin(user.id, "@trader")
    assert enrolment is not None and enrolment.uri.startswith("otpauth://totp/moahook")
    assert (await store.totp.confirm(user.id, code_at(enrolment.secret, clock))).ok
    return user.id, enrolment.secret


async def test_enrolment_takes_effect_only_with_a_right_first_code(
    store: Storage, clock: FakeClock
) -> None:
    user = await store.users.get_or_create(1, 1)
    enrolment = await store.totp.begin(user.id, "@me")
    assert enrolment is not None and "****" in repr(enrolment)
    assert not await store.totp.enrolled(user.id)
    assert (await store.totp.verify(user.id, code_at(enrolment.secret, clock))).outcome is (
        VerifyOutcome.NONE), "not usable before it is confirmed"
    wrong = await store.totp.confirm(user.id, "000000" if code_at(
        enrolment.secret, clock) != "000000" else "111111")
    assert wrong.outcome is VerifyOutcome.WRONG and wrong.tries_left == 4
    assert (await store.totp.confirm(user.id, code_at(enrolment.secret, clock))).ok
    assert await store.totp.enrolled(user.id)
    assert await store.totp.begin(user.id, "@me") is None, "disable it first"


async def test_a_code_is_accepted_once_and_only_near_its_time(
    store: Storage, clock: FakeClock
) -> None:
    user_id, secret = await enrolled_user(store, clock)
    clock.advance(STEP_SECONDS)
    code = code_at(secret, clock)
    assert (await store.totp.verify(user_id, code)).ok
    assert not (await store.totp.verify(user_id, code)).ok, "replayed in its window"
    assert not (await store.totp.verify(user_id, code_at(secret, clock, -1))).ok, "older step"
    assert not (await store.totp.verify(user_id, code_at(secret, clock, 3))).ok, "too far ahead"
    clock.advance(STEP_SECONDS)
    assert (await store.totp.verify(user_id, code_at(secret, clock, 1))).ok, "clock skew"


async def test_five_wrong_codes_lock_checking_for_five_minutes(
    store: Storage, clock: FakeClock
) -> None:
    user_id, secret = await enrolled_user(store, clock)
    clock.advance(STEP_SECONDS)
    results = [await store.totp.verify(user_id, "12345x") for _ in range(5)]
    assert [r.outcome for r in results] == [VerifyOutcome.WRONG] * 4 + [VerifyOutcome.VOID]
    assert (await store.totp.verify(user_id, code_at(secret, clock))).outcome is (
        VerifyOutcome.VOID), "even the right code while locked"
    clock.advance(5 * 60 + STEP_SECONDS)
    assert (await store.totp.verify(user_id, code_at(secret, clock))).ok


@pytest.mark.parametrize("code", ["１２３４５６", "١٢٣٤٥٦", " 12345", "1234567"])
async def test_only_six_ascii_digits_are_codes(
    store: Storage, clock: FakeClock, code: str
) -> None:
    user_id, _ = await enrolled_user(store, clock)
    assert not (await store.totp.verify(user_id, code)).ok


async def test_disabling_takes_a_valid_code(store: Storage, clock: FakeClock) -> None:
    user_id, secret = await enrolled_user(store, clock)
    clock.advance(STEP_SECONDS)
    assert not (await store.totp.disable(user_id, "000001")).ok
    assert await store.totp.enrolled(user_id)
    assert (await store.totp.disable(user_id, code_at(secret, clock))).ok
    assert not await store.totp.enrolled(user_id)


async def test_the_secret_is_encrypted_and_bound_to_its_row(
    store: Storage, clock: FakeClock
) -> None:
    first, secret = await enrolled_user(store, clock, 101)
    second, _ = await enrolled_user(store, clock, 102)
    async with store.db.session() as session:
        raw = (await session.execute(text("SELECT secret_enc FROM totp_secrets"))).all()
    for (blob,) in raw:
        assert secret.encode() not in bytes(blob)
    async with store.db.transaction() as session:
        blob = (await session.execute(text(
            "SELECT secret_enc FROM totp_secrets WHERE user_id = :u"), {"u": first})).scalar_one()
        await session.execute(
            update(TotpSecret).where(col(TotpSecret.user_id) == second).values(secret_enc=blob)
        )
    clock.advance(STEP_SECONDS)
    with pytest.raises(DecryptionError):
        await store.totp.verify(second, code_at(secret, clock))


async def test_rotation_reencrypts_the_secret(
    target: Target, key1: bytes, key2: bytes, clock: FakeClock
) -> None:
    old = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        user_id, secret = await enrolled_user(old, clock)
    finally:
        await old.close()
    new = await Storage.open(target.url, [key2, key1], schema=target.schema, clock=clock)
    try:  # opening with two keys re-encrypts everything under the first
        assert await reencrypt_all(new.db, new.box) == 0
    finally:
        await new.close()
    alone = await Storage.open(target.url, [key2], schema=target.schema, clock=clock)
    try:
        clock.advance(STEP_SECONDS)
        assert (await alone.totp.verify(user_id, code_at(secret, clock))).ok
    finally:
        await alone.close()


async def test_sensitive_actions_take_the_authenticator_once_enrolled(
    store: Storage, clock: FakeClock
) -> None:
    user = await store.users.get_or_create(7, 7)
    for purpose in ("keys", "real", "webhook_rotate", "limits", "delete"):
        assert not await store.second_factor.uses_totp(user.id, purpose)
    enrolment = await store.totp.begin(user.id, "@x")
    assert enrolment is not None
    await store.totp.confirm(user.id, code_at(enrolment.secret, clock))
    assert [p for p in ("keys", "real", "webhook_rotate", "limits", "delete")
            if await store.second_factor.uses_totp(user.id, p)] == [
        "keys", "real", "webhook_rotate", "limits"]
    chat_code = await store.two_factor.issue(user.id, "real")
    assert not (await store.second_factor.verify(user.id, "real", chat_code)).ok
    clock.advance(STEP_SECONDS)
    assert (await store.second_factor.verify(user.id, "real", code_at(
        enrolment.secret, clock))).ok
    delete_code = await store.two_factor.issue(user.id, "delete")
    assert (await store.second_factor.verify(user.id, "delete", delete_code)).ok
