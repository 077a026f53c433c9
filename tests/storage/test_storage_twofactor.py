"""2FA codes (SPEC section 6): 6 digits, 5 minutes, 5 wrong tries, single use, hashed."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from storage.facade import Storage
from storage.models import TwoFactorCode
from storage.records import VerifyOutcome, VerifyResult

from .conftest import FakeClock


async def test_right_code_works_once(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    code = await store.two_factor.issue(user.id, "keys")
    assert re.fullmatch(r"\d{6}", code)
    assert (await store.two_factor.verify(user.id, "other", code)).outcome is VerifyOutcome.NONE
    assert (await store.two_factor.verify(user.id, "keys", code)).ok
    assert (await store.two_factor.verify(user.id, "keys", code)).outcome is VerifyOutcome.NONE


async def test_stored_only_as_hash(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    code = await store.two_factor.issue(user.id, "keys")
    async with store.db.session() as session:
        (row,) = (await session.execute(select(TwoFactorCode))).scalars().all()
    assert code not in row.code_hash and len(row.code_hash) == 64


async def test_five_wrong_tries_void_the_code(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    code = await store.two_factor.issue(user.id, "real")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    results = [await store.two_factor.verify(user.id, "real", wrong) for _ in range(5)]
    assert results[:4] == [VerifyResult(VerifyOutcome.WRONG, n) for n in (4, 3, 2, 1)]
    assert results[4].outcome is VerifyOutcome.VOID
    # The right code no longer helps.
    assert (await store.two_factor.verify(user.id, "real", code)).outcome is VerifyOutcome.VOID


async def test_expiry_after_five_minutes(store: Storage, clock: FakeClock) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    code = await store.two_factor.issue(user.id, "delete")
    clock.advance(299)
    fresh = await store.two_factor.issue(user.id, "rotate")
    clock.advance(1)
    assert (await store.two_factor.verify(user.id, "delete", code)).outcome is (
        VerifyOutcome.EXPIRED)
    assert (await store.two_factor.verify(user.id, "rotate", fresh)).ok


async def test_new_code_replaces_earlier_one(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    old = await store.two_factor.issue(user.id, "keys")
    new = await store.two_factor.issue(user.id, "keys")
    if old != new:
        assert not (await store.two_factor.verify(user.id, "keys", old)).ok
    assert (await store.two_factor.verify(user.id, "keys", new)).ok


@pytest.mark.parametrize(
    "code", ["１２３４５６", "١٢٣٤٥٦", "12345", "1234567", "12 456", "+12345"]
)
def test_a_code_is_six_ascii_digits_only(code: str) -> None:
    from storage.repositories.twofactor import well_formed

    assert not well_formed(code)
    assert well_formed("012345")
