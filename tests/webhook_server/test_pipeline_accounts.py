"""Several accounts per user (SPEC section 16) through the whole order path: HTTP on a
real socket → intake → pipeline → the KIS simulator. One alert becomes one order per
account it names (`account`: a name, names, `all`; absent: the default), each guarded,
sized, limited and placed with that account's keys on its own; one account's refusal
never stops another's order; a retried or resumed alert never doubles any account's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from bot.formatting import format_notice
from bot.views import account_names, log_message
from kis.sim import SimAccount, demo_account, generate_accounts
from storage.models import Alert
from storage.notices import Notice
from storage.options import LimitName
from storage.records import AccountRecord, AlertStatus
from webhook_server.alert import parse_alert
from webhook_server.pipeline import PipelineHooks
from webhook_server.store_intake import StorageIntake

from .test_pipeline_e2e import BACKENDS, BUY, WAIT, Stack, Stop, localized, stack

# Account state lives in these objects (the simulator trades on them): fresh per test.
OTHERS = generate_accounts(5, prefix="acct")


async def add_account(s: Stack, name: str, sim: SimAccount, *, validated: bool = True,
                      default: bool = False) -> AccountRecord:
    """Another account of the stack's user, with `sim`'s keys."""
    account = await s.storage.accounts.create(s.user.id, name, environment=sim.env)
    await s.storage.key_sets.save(
        s.user.id, sim.env, app_key=sim.app_key, app_secret=sim.app_secret, cano=sim.cano,
        product_code=sim.product_code, hts_id=sim.hts_id, account_id=account.id,
    )
    await s.storage.key_sets.record_checks(s.user.id, sim.env, {"token": True}, validated,
                                           account_id=account.id)
    if default:
        await s.storage.accounts.set_default(account.id)
    return account


def canos(s: Stack) -> list[str]:
    return sorted(order.cano for order in s.sim.orders)


async def rows_of(s: Stack, received: str | int) -> list[Any]:
    """The accounts' rows of a received alert, in the order they were stored."""
    async with s.storage.db.session() as session:
        ids = (await session.execute(
            select(col(Alert.id)).where(col(Alert.parent_id) == int(received))
            .order_by(col(Alert.id))
        )).scalars().all()
    return [await s.alert(i) for i in ids]


def accounts_stack(tmp_path: Path, count: int, backend: str = "sqlite", **options: Any) -> Any:
    """The demo account (the user's `main`) and `count` more in the simulator, each with
    no holdings (the simulator trades on these objects: made afresh for each test)."""
    OTHERS[:] = generate_accounts(5, prefix="acct")
    return stack(tmp_path, backend=backend, accounts=[demo_account(), *OTHERS[:count]],
                 **options)


# --- fan-out ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_an_alert_for_all_places_one_order_in_each_of_two_accounts(
    tmp_path: Path, backend: str
) -> None:
    async with accounts_stack(tmp_path, 1, backend) as s:
        isa = await add_account(s, "isa", OTHERS[0])
        status, answer = await s.post({**BUY, "account": "all", "comment": "both"})
        assert status == 200 and answer["status"] == "accepted"
        await s.settle()
        assert canos(s) == sorted([demo_account().cano, OTHERS[0].cano])
        received = await s.alert(answer["alert_id"])
        assert received.status is AlertStatus.FANNED_OUT
        rows = await rows_of(s, answer["alert_id"])
        main = await s.storage.accounts.by_name(s.user.id, "main")
        assert main is not None
        assert [(r.account_id, r.status) for r in rows] == [
            (main.id, AlertStatus.DONE), (isa.id, AlertStatus.DONE)
        ]
        for row, sim in zip(rows, (demo_account(), OTHERS[0]), strict=True):
            order = await s.storage.orders.by_alert(row.id)
            assert order is not None and order.account_id == row.account_id
            assert order.order_no in {o.odno for o in s.sim.orders if o.cano == sim.cano}
        # Every notice names its account: the user has two.
        notices = [n for n in await s.outbox() if n["kind"] == "order_accepted"]
        assert sorted(str(n["account"]) for n in notices) == ["isa", "main"]
        text = format_notice(Notice.from_payload(notices[0]), "ko")
        assert f"모의투자 · {notices[0]['account']}" in text


async def test_an_alert_for_five_accounts_places_five_orders_at_once(tmp_path: Path) -> None:
    async with accounts_stack(tmp_path, 5) as s:
        names = [f"a{n}" for n in range(1, 6)]
        for name, sim in zip(names, OTHERS, strict=True):
            await add_account(s, name, sim)
        status, answer = await s.post({**BUY, "quantity": "2", "account": ",".join(names)})
        assert status == 200
        await s.settle()
        assert canos(s) == sorted(sim.cano for sim in OTHERS)
        assert all(order.qty == 2 for order in s.sim.orders)
        rows = await rows_of(s, answer["alert_id"])
        assert [r.status for r in rows] == [AlertStatus.DONE] * 5
        assert demo_account().cano not in canos(s)  # the default was not named


async def test_an_alert_goes_to_the_account_it_names_whatever_the_case(
    tmp_path: Path,
) -> None:
    async with accounts_stack(tmp_path, 1) as s:
        isa = await add_account(s, "isa", OTHERS[0])
        status, answer = await s.post({**BUY, "account": " ISA "})
        assert status == 200
        await s.settle()
        assert canos(s) == [OTHERS[0].cano]
        row = await s.alert(answer["alert_id"])  # one account: the alert is its row
        assert (row.account_id, row.parent_id, row.status) == (isa.id, None, AlertStatus.DONE)


async def test_an_alert_without_account_goes_to_the_default_account(tmp_path: Path) -> None:
    async with accounts_stack(tmp_path, 1) as s:
        await add_account(s, "isa", OTHERS[0])
        await s.post(BUY)
        await s.settle()
        assert canos(s) == [demo_account().cano]
        isa = await s.storage.accounts.by_name(s.user.id, "isa")
        assert isa is not None
        await s.storage.accounts.set_default(isa.id)
        await s.post({**BUY, "id": "second"})
        await s.settle()
        assert canos(s) == sorted([demo_account().cano, OTHERS[0].cano])


async def test_one_accounts_refusal_does_not_stop_the_other_accounts_order(
    tmp_path: Path,
) -> None:
    """isa's keys failed their checks, and `nope` is no account: both are refused with
    their reason (in the chat and /log), while main's order is placed."""
    async with accounts_stack(tmp_path, 1) as s:
        await add_account(s, "isa", OTHERS[0], validated=False)
        status, answer = await s.post({**BUY, "account": "main,isa,nope"})
        assert status == 200 and answer["status"] == "accepted"
        await s.settle()
        assert canos(s) == [demo_account().cano]
        rows = await rows_of(s, answer["alert_id"])
        assert [r.status for r in rows] == [
            AlertStatus.DONE, AlertStatus.REFUSED, AlertStatus.REFUSED
        ]
        assert [r.reason_key for r in rows[1:]] == ["no_keys", "unknown_account"]
        refused = {str(n["account"]): n for n in await s.outbox()
                   if n["kind"] == "order_refused"}
        assert set(refused) == {"isa", "nope"}
        assert localized(refused["nope"]) == {"account": "nope"}
        names = account_names(await s.storage.accounts.for_user(s.user.id))
        log = log_message("en", await s.storage.alerts.recent(s.user.id), names)
        assert "[nope]" in log and "no account named 'nope'" in log and "[main]" in log


async def test_a_refusal_from_kis_for_one_account_leaves_the_others_order(
    tmp_path: Path,
) -> None:
    """Sized on its own: a sell of everything held finds shares in main, none in isa."""
    async with accounts_stack(tmp_path, 1) as s:
        await add_account(s, "isa", OTHERS[0])
        status, answer = await s.post(
            {"ticker": "005930", "action": "sell", "quantity": "all", "account": "all"}
        )
        assert status == 200
        await s.settle()
        assert canos(s) == [demo_account().cano]
        rows = await rows_of(s, answer["alert_id"])
        assert [r.status for r in rows] == [AlertStatus.DONE, AlertStatus.REFUSED]
        assert rows[1].reason_key == "not_held"


async def test_the_alerts_account_field_is_checked_from_the_message_alone(
    tmp_path: Path,
) -> None:
    async with accounts_stack(tmp_path, 0) as s:
        for bad, says in ((7, "must be a string"), ("", "is empty"), ("all,main", "alone"),
                          ("my isa", "letters a-z")):
            status, answer = await s.post({**BUY, "account": bad})
            assert status == 400 and answer["error"].startswith("account:"), answer
            assert says in answer["error"]
        assert s.sim.orders == [] and await s.storage.alerts.recent(s.user.id) == []


# --- exactly once, per account ------------------------------------------------------------


async def test_a_repeated_fan_out_never_doubles_any_accounts_order(tmp_path: Path) -> None:
    async with accounts_stack(tmp_path, 1) as s:
        await add_account(s, "isa", OTHERS[0])
        message = {**BUY, "account": "all", "id": "strategy-7"}
        answers = await asyncio.gather(*(s.post(message) for _ in range(5)))
        await s.settle()
        first = [a for _, a in answers if a["status"] == "accepted"]
        assert len(first) == 1
        assert all(a["alert_id"] == first[0]["alert_id"] for _, a in answers)
        status, again = await s.post(message)
        await s.settle()
        assert (status, again) == (200, {"status": "duplicate",
                                         "alert_id": first[0]["alert_id"]})
        assert canos(s) == sorted([demo_account().cano, OTHERS[0].cano])


@pytest.mark.parametrize("crash_at", ["before_order", "after_answer"])
async def test_a_crash_in_the_middle_of_a_fan_out_places_each_accounts_order_once(
    tmp_path: Path, crash_at: str
) -> None:
    """isa's order is placed and recorded; the process dies while kid's is on its way —
    before its order row (`before_order`), or after KIS answered and before the answer
    was recorded (`after_answer`). After the restart each account has its order exactly
    once: kid's is placed then, or found at KIS and not sent again; isa's is left alone."""
    async with accounts_stack(tmp_path, 2) as s:
        isa = await add_account(s, "isa", OTHERS[0])
        kid = await add_account(s, "kid", OTHERS[1])
        stop = Stop()
        isa_done = asyncio.Event()

        async def park_kid(alert_id: int) -> None:
            row = await s.storage.alerts.get(alert_id)
            if row is not None and row.account_id == kid.id:
                await isa_done.wait()  # isa's order first, then the crash here
                await stop(alert_id)

        async def watch_isa(alert_id: int) -> None:
            row = await s.storage.alerts.get(alert_id)
            order = await s.storage.orders.by_alert(alert_id)
            if row is not None and row.account_id == isa.id and order is not None:
                isa_done.set()

        assert s.make_pipeline is not None
        await s.pipeline.close()
        hooks = PipelineHooks(**{crash_at: park_kid}, before_send=watch_isa)
        if crash_at == "before_order":
            hooks.after_answer = watch_isa
        s.pipeline = s.make_pipeline(hooks)
        s.intake = StorageIntake(s.storage, s.pipeline)
        raw = json.dumps({**BUY, "account": "isa,kid"}).encode()
        result = await s.intake.submit(s.user.token, raw, parse_alert(raw), datetime.now(UTC))
        await asyncio.wait_for(stop.reached.wait(), WAIT)
        await s.sim.wait_for(lambda: any(o.cano == OTHERS[0].cano for o in s.sim.orders))
        await s.pipeline.close()  # the kill
        s.pipeline = s.make_pipeline()
        await s.pipeline.resume()
        await s.settle()
        assert canos(s) == sorted([OTHERS[0].cano, OTHERS[1].cano])
        rows = await rows_of(s, result.alert_id)
        for row in rows:
            order = await s.storage.orders.by_alert(row.id)
            assert order is not None and order.order_no is not None
            assert row.status is AlertStatus.DONE
        assert len([r for r in s.sim.requests if r.endpoint == "order"]) == 2
        assert await s.storage.alerts.unprocessed() == []


async def test_a_crash_before_a_fan_outs_orders_places_every_account_once_after(
    tmp_path: Path,
) -> None:
    async with accounts_stack(tmp_path, 2) as s:
        await add_account(s, "isa", OTHERS[0])
        await add_account(s, "kid", OTHERS[1])
        stop = Stop()
        assert s.make_pipeline is not None
        await s.pipeline.close()
        s.pipeline = s.make_pipeline(PipelineHooks(before_order=stop))
        s.intake = StorageIntake(s.storage, s.pipeline)
        raw = json.dumps({**BUY, "account": "all"}).encode()
        result = await s.intake.submit(s.user.token, raw, parse_alert(raw), datetime.now(UTC))
        await asyncio.wait_for(stop.reached.wait(), WAIT)
        await s.pipeline.close()
        assert s.sim.orders == []
        s.pipeline = s.make_pipeline()
        report = await s.pipeline.resume()
        assert report.alerts == 3
        await s.settle()
        assert canos(s) == sorted([demo_account().cano, OTHERS[0].cano, OTHERS[1].cano])
        rows = await rows_of(s, result.alert_id)
        assert [r.status for r in rows] == [AlertStatus.DONE] * 3


# --- limits per account -------------------------------------------------------------------


async def test_daily_limits_count_each_account_on_its_own(tmp_path: Path) -> None:
    async with accounts_stack(tmp_path, 1) as s:
        await add_account(s, "isa", OTHERS[0])
        await s.storage.options.set_limit(s.user.id, LimitName.ORDERS, "KRW", Decimal(1))
        await s.post({**BUY, "account": "all", "id": "one"})
        await s.settle()
        assert len(s.sim.orders) == 2  # one each: each account's day is its own
        _, answer = await s.post({**BUY, "account": "isa", "id": "two"})
        await s.settle()
        assert len(s.sim.orders) == 2
        row = await s.alert(answer["alert_id"])
        assert (row.status, row.reason_key) == (AlertStatus.REFUSED, "limit_orders")


async def test_storage_keeps_a_user_with_one_account_unnamed(tmp_path: Path) -> None:
    """A single-account chat reads as before accounts existed: no account in notices."""
    async with accounts_stack(tmp_path, 0) as s:
        await s.post(BUY)
        await s.settle()
        [notice] = await s.outbox()
        assert "account" not in notice
        assert account_names(await s.storage.accounts.for_user(s.user.id)) == {}
