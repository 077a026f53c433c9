"""The fill-notice supervisor's notice path: each KIS notice stored (once), its chat
message queued in the outbox, and the queued row handed to the notifier as stored."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from bot.watchers import Target, WatcherSupervisor
from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.fillnotice import FillNotice
from kis.models import AppCredentials
from kis.secret import Secret
from storage.facade import Storage
from storage.notices import NoticeKind, notice_dedupe_key
from storage.records import OrderStatus, OutboxMessage

CHAT = 4242
ORDER_NO = "0000031415"

ACCEPTED = FillNotice(
    hts_id="hts", account="5012345601", order_no=ORDER_NO, original_order_no="",
    side="buy", correction="normal", order_kind="01", order_condition="0", symbol="005930",
    quantity=10, price=0, time="091500", refused=False, is_fill=False, accept_status="1",
    branch="91252", order_qty=10, account_name="", name="삼성전자", order_price=0,
)
FILLED_4 = replace(ACCEPTED, is_fill=True, accept_status="2", quantity=4, price=70_000,
                   time="091501")
FILLED_6 = replace(FILLED_4, quantity=6, price=70_100, time="091502")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = await Storage.open(f"sqlite+aiosqlite:///{tmp_path}/w.db", [secrets.token_bytes(32)])
    try:
        yield opened
    finally:
        await opened.close()


async def _setup(
    store: Storage,
) -> tuple[WatcherSupervisor, list[OutboxMessage], Target, int]:
    woken: list[OutboxMessage] = []

    def wake(message: OutboxMessage | None = None, /) -> None:
        assert message is not None  # always the queued row, never "read the outbox"
        woken.append(message)

    user = await store.users.get_or_create(CHAT, CHAT)
    account = await store.accounts.default(user.id)
    assert account is not None
    alert = await store.alerts.accept(user.id, "{}", {}, "a1", account_id=account.id)
    order = await store.orders.create_pending(
        alert.alert_id, user_id=user.id, environment=Environment.PAPER, symbol="005930",
        side="buy", order_type="market", quantity=10, account_id=account.id,
    )
    await store.orders.mark_accepted(order.id, ORDER_NO, "91252")
    # The notice path touches neither KIS nor the endpoints.
    watchers = WatcherSupervisor(
        storage=store, kis=cast(KisClient, object()), endpoints=Endpoints(rest={}, ws={}),
        wake=wake,
    )
    target = Target(account.id, user.id, CHAT,
                    AppCredentials("PS" + "k" * 34, Secret("s" * 180), Environment.PAPER),
                    "hts", "50123456", "01")
    return watchers, woken, target, order.id


async def test_each_notice_is_queued_once_and_handed_over_as_stored(store: Storage) -> None:
    watchers, woken, target, order_id = await _setup(store)
    user_id = target.user_id
    for notice in (ACCEPTED, ACCEPTED, FILLED_4, FILLED_4, FILLED_6):  # KIS repeats some
        await watchers.handle_notice(target, notice)

    assert [m.kind for m in woken] == ["order_accepted", "order_partial", "order_filled"]
    assert woken == await store.outbox.due(10)  # exactly the stored rows, in order
    assert all(m.chat_id == CHAT and m.user_id == user_id for m in woken)
    partial, filled = woken[1].payload, woken[2].payload
    assert (partial["filled"], partial["ordered"], partial["quantity"]) == (4, 10, 4)
    assert (filled["filled"], filled["ordered"], filled["price"]) == (10, 10, "70100")

    order = await store.orders.get(order_id)
    assert order is not None and order.status is OrderStatus.FILLED
    assert order.filled_amount == 4 * 70_000 + 6 * 70_100
    assert [f.quantity for f in await store.fills.for_order(order_id)] == [4, 6]


async def test_an_acceptance_the_pipeline_queued_first_is_not_queued_again(
    store: Storage,
) -> None:
    watchers, woken, target, _ = await _setup(store)
    user_id = target.user_id
    key = notice_dedupe_key(NoticeKind.ORDER_ACCEPTED, user_id, "paper", ORDER_NO,
                            target.account_id)
    queued = await store.outbox.add(user_id, CHAT, "order_accepted", {"by": "pipeline"}, key)
    assert queued is not None
    await watchers.handle_notice(target, ACCEPTED)
    assert woken == []  # nothing new to send
    assert await store.outbox.due(10) == [queued]


async def test_a_refusal_notice_marks_the_order_and_queues_one_message(store: Storage) -> None:
    watchers, woken, target, order_id = await _setup(store)
    refused = replace(ACCEPTED, refused=True)
    await watchers.handle_notice(target, refused)
    await watchers.handle_notice(target, refused)  # KIS repeats

    assert [m.kind for m in woken] == ["order_rejected"]
    assert woken == await store.outbox.due(10)
    order = await store.orders.get(order_id)
    assert order is not None and order.status is OrderStatus.REJECTED


async def test_a_notice_for_a_fill_already_settled_from_kis_sends_nothing(
    store: Storage,
) -> None:
    """KIS's daily executions showed the order filled before its notices arrived: the
    late notices are stored but neither count again nor message the chat twice."""
    watchers, woken, target, order_id = await _setup(store)
    settled, queued = await store.orders.record_settlement(
        order_id, 10, 4 * 70_000 + 6 * 70_100, lambda before, after: None
    )
    assert settled is not None and settled.status is OrderStatus.FILLED and queued is None
    for notice in (FILLED_4, FILLED_6):
        await watchers.handle_notice(target, notice)
    assert woken == []
    order = await store.orders.get(order_id)
    assert order is not None and (order.filled_qty, order.notice_qty) == (10, 10)
    assert order.filled_amount == 4 * 70_000 + 6 * 70_100
