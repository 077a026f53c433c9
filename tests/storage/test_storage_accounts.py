"""Accounts (SPEC section 16): named key sets per user, the default, the migration that
makes every existing user one account `main`, and a message for several accounts
stored as one received alert and one row per account."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, text, update
from sqlmodel import col

from kis.env import Environment
from storage import aad
from storage.account_names import AccountNameError, normalize_account_name
from storage.crypto import DecryptionError, SecretBox
from storage.db import Database
from storage.facade import Storage
from storage.models import KeySet
from storage.records import AlertStatus
from storage.repositories.accounts import AccountNameTaken, LastAccount
from storage.repositories.alerts import AlertLeg
from storage.types import UtcDateTime

from .conftest import FakeClock, Target

APP_KEY = "PS" + "k" * 34
SECRET = "s" * 180


async def _keys(store: Storage, user_id: int, env: Environment, account_id: int | None,
                cano: str) -> None:
    await store.key_sets.save(
        user_id, env, app_key=APP_KEY, app_secret=SECRET, cano=cano, product_code="01",
        hts_id="trader", account_id=account_id,
    )


# --- names --------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "stored"), [("main", "main"), (" ISA ", "isa"),
                                                ("kid-2_b", "kid-2_b"), ("7", "7")])
def test_account_names_are_case_insensitive_and_trimmed(given: str, stored: str) -> None:
    assert normalize_account_name(given) == stored


@pytest.mark.parametrize(("given", "why"), [
    ("", "empty"), ("all", "every account"), ("ALL", "every account"),
    ("a" * 17, "longer than 16"), ("my isa", "letters a-z"), ("-x", "start with"),
    ("계좌", "letters a-z"), ("main,isa", "letters a-z"),
])
def test_account_names_that_cannot_be_say_why(given: str, why: str) -> None:
    with pytest.raises(AccountNameError, match=why):
        normalize_account_name(given)


# --- the repository -------------------------------------------------------------------------


async def test_a_new_user_has_one_default_account_main(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    (main,) = await store.accounts.for_user(user.id)
    assert (main.name, main.is_default, main.active_environment) == (
        "main", True, Environment.PAPER
    )
    again = await store.users.get_or_create(telegram_id=1, chat_id=1)
    assert again.id == user.id and len(await store.accounts.for_user(user.id)) == 1


async def test_names_are_unique_per_user_whatever_their_case(store: Storage) -> None:
    one = await store.users.get_or_create(telegram_id=1, chat_id=1)
    two = await store.users.get_or_create(telegram_id=2, chat_id=2)
    isa = await store.accounts.create(one.id, "ISA")
    assert isa.name == "isa" and not isa.is_default
    with pytest.raises(AccountNameTaken):
        await store.accounts.create(one.id, "isa")
    with pytest.raises(AccountNameTaken):
        await store.accounts.rename(isa.id, "Main")
    assert (await store.accounts.create(two.id, "isa")).user_id == two.id  # another user's
    assert (await store.accounts.by_name(one.id, "IsA")) == isa
    assert await store.accounts.by_name(one.id, "nope") is None
    assert await store.accounts.by_name(one.id, "not a name") is None


async def test_the_default_account_carries_the_users_environment(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    isa = await store.accounts.create(user.id, "isa", environment=Environment.REAL)
    await store.accounts.set_default(isa.id)
    accounts = await store.accounts.for_user(user.id)
    assert [(a.name, a.is_default) for a in accounts] == [("isa", True), ("main", False)]
    fresh = await store.users.get(user.id)
    assert fresh is not None and fresh.active_environment is Environment.REAL
    await store.users.set_active_environment(user.id, Environment.PAPER)  # /paper
    changed = await store.accounts.get(isa.id)
    assert changed is not None and changed.active_environment is Environment.PAPER
    main = await store.accounts.by_name(user.id, "main")
    assert main is not None and main.active_environment is Environment.PAPER
    await store.accounts.set_environment(main.id, Environment.REAL)  # not the default
    fresh = await store.users.get(user.id)
    assert fresh is not None and fresh.active_environment is Environment.PAPER


async def test_deleting_the_default_makes_the_oldest_other_the_default_and_the_last_stays(
    store: Storage,
) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    main = await store.accounts.by_name(user.id, "main")
    assert main is not None
    isa = await store.accounts.create(user.id, "isa", environment=Environment.REAL)
    await _keys(store, user.id, Environment.REAL, isa.id, "22222222")
    successor = await store.accounts.delete(main.id)
    assert successor is not None and successor.id == isa.id and successor.is_default
    fresh = await store.users.get(user.id)
    assert fresh is not None and fresh.active_environment is Environment.REAL
    with pytest.raises(LastAccount):
        await store.accounts.delete(isa.id)
    assert [k.cano for k in await store.key_sets.for_user(user.id)] == ["22222222"]


async def test_key_sets_are_per_account_and_sealed_to_their_account(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    isa = await store.accounts.create(user.id, "isa")
    await _keys(store, user.id, Environment.PAPER, None, "11111111")  # the default
    await _keys(store, user.id, Environment.PAPER, isa.id, "22222222")
    main_keys = await store.key_sets.get(user.id, Environment.PAPER)
    isa_keys = await store.key_sets.get(user.id, Environment.PAPER, account_id=isa.id)
    assert main_keys is not None and main_keys.cano == "11111111"
    assert isa_keys is not None and isa_keys.cano == "22222222"
    assert isa_keys.app_secret.reveal() == SECRET
    assert len(await store.key_sets.for_user(user.id)) == 2
    assert [k.cano for k in await store.key_sets.for_account(isa.id)] == ["22222222"]
    # A ciphertext moved to the other account's row does not open there.
    async with store.db.transaction() as session:
        main_row = (await session.execute(
            text("SELECT app_secret_enc FROM key_sets WHERE cano = '11111111'")
        )).scalar_one()
        await session.execute(
            update(KeySet).where(col(KeySet.account_id) == isa.id)
            .values(app_secret_enc=main_row)
        )
    with pytest.raises(DecryptionError):
        await store.key_sets.get(user.id, Environment.PAPER, account_id=isa.id)


async def test_keys_in_use_follow_each_accounts_environment(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    isa = await store.accounts.create(user.id, "isa", environment=Environment.REAL)
    await _keys(store, user.id, Environment.PAPER, None, "11111111")
    await _keys(store, user.id, Environment.REAL, isa.id, "22222222")
    await store.key_sets.record_checks(user.id, Environment.PAPER, {}, True)
    await store.key_sets.record_checks(user.id, Environment.REAL, {}, True, account_id=isa.id)
    active = await store.key_sets.validated_for_active()
    assert sorted((a.account.name, a.keys.cano) for a in active) == [
        ("isa", "22222222"), ("main", "11111111")
    ]
    assert {env for _, env in await store.key_sets.keys_in_use()} == {
        Environment.PAPER, Environment.REAL
    }


# --- a message for several accounts -------------------------------------------------------


def _message(key: str | None = "s-1") -> tuple[str, dict[str, object]]:
    parsed: dict[str, object] = {"ticker": "005930", "action": "buy", "quantity": 1,
                                 "account": "main,isa"}
    if key:
        parsed["id"] = key
    return json.dumps(parsed), parsed


async def _fan_out(store: Storage, user_id: int, accounts: list[int | None],
                   key: str | None = "s-1") -> tuple[int, tuple[int, ...], bool]:
    raw, parsed = _message(key)
    legs = [AlertLeg(account, {**parsed, "account": str(account)}) for account in accounts]
    result = await store.alerts.accept(user_id, raw, parsed, key, legs=legs)
    return result.alert_id, result.legs, result.duplicate


@pytest.mark.parametrize("key", ["s-1", None])
async def test_a_message_for_several_accounts_is_one_alert_and_a_row_per_account(
    store: Storage, key: str | None
) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    main = await store.accounts.by_name(user.id, "main")
    isa = await store.accounts.create(user.id, "isa")
    assert main is not None
    received, legs, duplicate = await _fan_out(store, user.id, [main.id, isa.id, None], key)
    assert not duplicate and len(legs) == 3
    parent = await store.alerts.get(received)
    assert parent is not None and parent.status is AlertStatus.FANNED_OUT
    rows = [await store.alerts.get(leg) for leg in legs]
    assert [(r.account_id, r.parent_id, r.status) for r in rows if r] == [
        (main.id, received, AlertStatus.ACCEPTED), (isa.id, received, AlertStatus.ACCEPTED),
        (None, received, AlertStatus.ACCEPTED),
    ]
    # What the pipeline picks up after a crash: the accounts' rows, never the message.
    assert sorted(a.id for a in await store.alerts.unprocessed()) == sorted(legs)
    # The log shows each account's row; a repeat answers with the received alert's id.
    assert {a.id for a in await store.alerts.recent(user.id)} == set(legs)
    again = await _fan_out(store, user.id, [main.id, isa.id, None], key)
    assert again[2] and again[0] == received


async def test_a_message_whose_every_account_refused_may_be_sent_again(
    store: Storage,
) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    isa = await store.accounts.create(user.id, "isa")
    received, legs, _ = await _fan_out(store, user.id, [None, isa.id])
    await store.alerts.mark_refused(legs[0], "no account named 'x'")
    again = await _fan_out(store, user.id, [None, isa.id])
    assert again[2] and again[0] == received  # one account still acts on it
    await store.alerts.mark_refused(legs[1], "paused")
    retry = await _fan_out(store, user.id, [None, isa.id])
    assert not retry[2] and retry[0] != received


async def test_concurrent_repeats_of_a_fanned_out_message_store_it_once(
    store: Storage,
) -> None:
    """The batch path: many copies at once of one message for two accounts."""
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    isa = await store.accounts.create(user.id, "isa")
    main = await store.accounts.by_name(user.id, "main")
    assert main is not None
    results = await asyncio.gather(
        *(_fan_out(store, user.id, [main.id, isa.id]) for _ in range(20))
    )
    fresh = [r for r in results if not r[2]]
    assert len(fresh) == 1
    received, legs, _ = fresh[0]
    assert all(r[0] == received for r in results)
    assert sorted(a.id for a in await store.alerts.unprocessed()) == sorted(legs)


# --- the migration --------------------------------------------------------------------------


async def test_accounts_migration_makes_every_user_one_account_main_and_keeps_everything(
    target: Target, key1: bytes, clock: FakeClock,
) -> None:
    """A database made by the previous schema (0012): users with keys in both
    environments, an alert still to act on, a filled order and its fill, the day's
    limit use. After the upgrade each user has one default account `main` in their
    environment holding their keys (still readable), and every row names it."""
    box = SecretBox([key1])
    now = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)
    db = Database.create(target.url, schema=target.schema)
    try:
        await db.migrate("0012")
        stamp = bindparam("now", type_=UtcDateTime())
        async with db.engine.begin() as conn:
            for user_id, env in ((1, "real"), (2, "paper")):
                await conn.execute(text(
                    "INSERT INTO users (id, telegram_id, chat_id, language, active_environment,"
                    " paused, webhook_token_hash, webhook_token_enc, created_at, updated_at)"
                    " VALUES (:id, :tg, :tg, 'en', :env, false, :hash, :enc, :now, :now)"
                ).bindparams(stamp), {"id": user_id, "tg": 40 + user_id, "env": env,
                                      "hash": f"h{user_id}", "enc": os.urandom(8), "now": now})
            for user_id, env, cano in ((1, "paper", "11111111"), (1, "real", "22222222"),
                                       (2, "paper", "33333333")):
                await conn.execute(text(
                    "INSERT INTO key_sets (user_id, environment, app_key_enc, app_key_hash,"
                    " app_secret_enc, cano, product_code, hts_id, validated, created_at,"
                    " updated_at) VALUES (:u, :env, :key, 'hash', :secret, :cano, '01', 'hts',"
                    " true, :now, :now)"
                ).bindparams(stamp), {
                    "u": user_id, "env": env, "cano": cano, "now": now,
                    "key": box.encrypt(APP_KEY, aad.app_key(user_id, env)),
                    "secret": box.encrypt(SECRET, aad.app_secret(user_id, env)),
                })
            await conn.execute(text(
                "INSERT INTO alerts (id, user_id, received_at, raw_body, body_hash, status,"
                " updated_at) VALUES (1, 1, :now, '{}', 'b1', 'accepted', :now),"
                " (2, 1, :now, '{}', 'b2', 'done', :now)"
            ).bindparams(stamp), {"now": now})
            await conn.execute(text(
                "INSERT INTO orders (id, alert_id, user_id, environment, symbol, side,"
                " order_type, quantity, order_no, status, filled_qty, filled_amount,"
                " notice_qty, notice_amount, settled_qty, created_at, updated_at, market,"
                " exchange, currency) VALUES (1, 2, 1, 'real', '005930', 'buy', 'market', 3,"
                " '0000000007', 'filled', 3, 2130000000, 3, 2130000000, 0, :now, :now, 'KRX',"
                " 'KRX', 'KRW')"
            ).bindparams(stamp), {"now": now})
            await conn.execute(text(
                "INSERT INTO fills (user_id, order_id, environment, order_no, quantity, price,"
                " filled_at, notice_key, created_at, market, currency) VALUES (1, 1, 'real',"
                " '0000000007', 3, 710000000, :now, 'n1', :now, 'KRX', 'KRW')"
            ).bindparams(stamp), {"now": now})
            await conn.execute(text(
                "INSERT INTO limit_usage (user_id, market, day, orders, bought, updated_at)"
                " VALUES (1, 'KRX', '2026-01-05', 2, 1420000000, :now)"
            ).bindparams(stamp), {"now": now})
        await db.migrate()
    finally:
        await db.dispose()
    store = await Storage.open(target.url, [key1], schema=target.schema, clock=clock)
    try:
        for user_id, env in ((1, Environment.REAL), (2, Environment.PAPER)):
            (main,) = await store.accounts.for_user(user_id)
            assert (main.name, main.is_default, main.active_environment) == ("main", True, env)
        main = (await store.accounts.for_user(1))[0]
        keys = await store.key_sets.for_user(1)
        assert [(k.environment, k.cano, k.account_id) for k in keys] == [
            (Environment.PAPER, "11111111", main.id), (Environment.REAL, "22222222", main.id)
        ]
        assert all(k.app_key.reveal() == APP_KEY and k.app_secret.reveal() == SECRET
                   and k.validated for k in keys)
        alerts = [await store.alerts.get(i) for i in (1, 2)]
        assert [(a.account_id, a.status) for a in alerts if a] == [
            (main.id, AlertStatus.ACCEPTED), (main.id, AlertStatus.DONE)
        ]
        order = await store.orders.by_order_no(1, "0000000007", account_id=main.id)
        assert order is not None and order.filled_qty == 3
        assert [f.account_id for f in await store.fills.for_order(order.id)] == [main.id]
        used = await store.limits.usage(1, "KRX", "2026-01-05")
        assert (used.orders, used.bought) == (2, Decimal(142000))
        # A user of the old schema adds a second account as a new user would.
        isa = await store.accounts.create(1, "isa")
        await _keys(store, 1, Environment.PAPER, isa.id, "44444444")
        assert len(await store.key_sets.for_user(1)) == 3
    finally:
        await store.close()
