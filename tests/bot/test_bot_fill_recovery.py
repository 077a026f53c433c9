"""Fills made while no fill-notice socket was live (a reconnect, a failover, start-up)
reach the chat exactly once when the socket is back (SPEC 12): the key's owner reads
KIS's daily executions after every (re)subscription."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot.factory import create_bot_for
from bot.notifier import Notifier
from bot.standin import BotApiStandIn
from bot.watchers import WatcherSupervisor
from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.models import Account, AppCredentials, OrderRequest, OrderType, Side
from kis.secret import Secret
from kis.sim import KisSimulator, demo_account
from kis.ws import Backoff, HubOptions
from storage.facade import Storage
from storage.records import OrderStatus
from webhook_server.settlement import FillSettler

WAIT = 10.0
CHAT = 7301


@dataclass
class World:
    sim: KisSimulator
    standin: BotApiStandIn
    storage: Storage
    kis: KisClient
    watchers: WatcherSupervisor
    user_id: int


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", [os.urandom(32)])
    http = httpx.AsyncClient(timeout=5.0)
    try:
        async with KisSimulator() as sim, BotApiStandIn() as standin:
            endpoints = Endpoints(
                rest={env: sim.rest_url(env) for env in Environment},
                ws={env: sim.ws_url(env) for env in Environment},
            )
            kis = KisClient(endpoints=endpoints, http=http, token_store=storage.tokens)
            notifier = Notifier(create_bot_for(standin.token, standin.base_url), storage,
                                poll_interval=0.2)
            settler = FillSettler(storage=storage, kis=kis, wake=notifier.wake)
            watchers = WatcherSupervisor(
                storage=storage, kis=kis, endpoints=endpoints, wake=notifier.wake,
                settler=settler, hub_options=HubOptions(backoff=Backoff(base=0.05, cap=0.2)),
            )
            account = demo_account()
            user = await storage.users.get_or_create(CHAT, CHAT, "en")
            await storage.key_sets.save(
                user.id, Environment.PAPER, app_key=Secret(account.app_key),
                app_secret=Secret(account.app_secret), cano=account.cano,
                product_code=account.product_code, hts_id=account.hts_id,
            )
            await storage.key_sets.record_checks(user.id, Environment.PAPER, {}, True)
            await notifier.start()
            await watchers.start()
            try:
                await sim.wait_for(lambda: sim.ws.subscribed(account.app_key), WAIT)
                yield World(sim, standin, storage, kis, watchers, user.id)
            finally:
                await watchers.close()
                await settler.close()
                await notifier.close()
    finally:
        await http.aclose()
        await storage.close()


async def _order_while_notices_are_lost(world: World, quantity: int) -> int:
    """An order accepted by KIS and filled, whose fill notice never arrives."""
    account = demo_account()
    creds = AppCredentials(account.app_key, Secret(account.app_secret), Environment.PAPER)
    world.sim.lose_fill_notices = 1
    alert = await world.storage.alerts.accept(world.user_id, "{}", {}, f"r{quantity}")
    default = await world.storage.accounts.default(world.user_id)
    assert default is not None
    order = await world.storage.orders.create_pending(
        alert.alert_id, user_id=world.user_id, environment=Environment.PAPER,
        symbol="005930", side="buy", order_type="market", quantity=quantity,
        account_id=default.id,
    )
    ack = await world.kis.place_order(
        creds, Account(account.cano, account.product_code),
        OrderRequest("005930", Side.BUY, quantity, OrderType.MARKET, 0),
    )
    await world.storage.orders.record_accepted(order, ack.order_no, ack.branch)
    await world.sim.wait_for(lambda: world.sim.lose_fill_notices == 0, WAIT)
    return order.id


def _filled_messages(world: World) -> list[str]:
    user = world.standin.user(CHAT, "Ara", language_code="en")
    return [m.text for m in user.bot_messages() if m.text.startswith("✅")]


async def test_fills_made_while_the_socket_was_down_arrive_once_after_it_is_back(
    world: World,
) -> None:
    order_id = await _order_while_notices_are_lost(world, 3)
    order = await world.storage.orders.get(order_id)
    assert order is not None and order.filled_qty == 0  # the notice never came
    account = demo_account()
    # The socket drops; the reconnect (a new subscription) reads KIS's executions.
    assert world.sim.ws.drop(account.app_key) == 1
    await world.standin.wait_until(lambda: len(_filled_messages(world)) == 1, WAIT)
    order = await world.storage.orders.get(order_id)
    assert order is not None and order.status is OrderStatus.FILLED and order.filled_qty == 3
    # Another reconnect finds nothing new: the fill is told once.
    await world.sim.wait_for(lambda: world.sim.ws.subscribed(account.app_key), WAIT)
    world.sim.ws.drop(account.app_key)
    await world.sim.wait_for(lambda: world.sim.ws.subscribed(account.app_key), WAIT)
    await world.watchers.sync(world.user_id)  # and a resync, for good measure
    messages = _filled_messages(world)
    assert len(messages) == 1, messages
    assert "3" in messages[0]
