"""An alert for several accounts whose keys are owned by different instances (SPEC
sections 12 and 16): two pipelines with their own lease keepers on one PostgreSQL, in
one process. The instance that receives the alert acts on the account whose key it
owns and leaves the other account's row to that key's owner; each account's order is
placed exactly once, by its key's owner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, text
from sqlmodel import col

from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.sim import KisSimulator, SimAccount, demo_account, generate_accounts
from kis.tokenstore import MemoryTokenStore
from storage.coordination import TELEGRAM_LEASE, LeaseKeeper, kis_lease
from storage.db import Database
from storage.facade import Storage
from storage.models import Alert
from storage.records import AlertStatus
from webhook_server.alert import parse_alert
from webhook_server.guards import AlwaysReady
from webhook_server.market_hours import MarketClock
from webhook_server.metrics import Metrics
from webhook_server.pipeline import OrderPipeline
from webhook_server.store_intake import StorageIntake

from .test_pipeline_e2e import PG_URL

BOUND = 15.0


class LeaseChanges:
    """Lease work that only says when this instance's KIS leases changed."""

    def __init__(self, changed: asyncio.Event) -> None:
        self._changed = changed

    async def gained(self, name: str, epoch: int) -> None:
        self._changed.set()

    async def losing(self, name: str) -> None:
        self._changed.set()


@dataclass
class Instance:
    storage: Storage
    keeper: LeaseKeeper
    pipeline: OrderPipeline
    intake: StorageIntake


async def until(condition: Callable[[], bool], changed: asyncio.Event,
                within: float = BOUND) -> None:
    """Until `condition` holds, judged again each time the leases change."""
    async def wait() -> None:
        while not condition():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(wait(), within)


@contextlib.asynccontextmanager
async def schema() -> AsyncIterator[str]:
    name = f"moahook_acct_{secrets.token_hex(6)}"
    admin = Database.create(PG_URL)
    try:
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{name}"'))
        yield name
    finally:
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        await admin.dispose()


@contextlib.asynccontextmanager
async def instance(
    name: str, schema_name: str, master: bytes, kis: KisClient, changed: asyncio.Event
) -> AsyncIterator[Instance]:
    storage = await Storage.open(PG_URL, [master], schema=schema_name)

    async def wanted() -> set[str]:
        in_use = await storage.key_sets.keys_in_use()
        return {kis_lease(digest, env.value) for digest, env in in_use} | {TELEGRAM_LEASE}

    keeper = LeaseKeeper(leases=storage.leases, instances=storage.instances,
                         signals=storage.signals, name=name, wanted=wanted, ttl=3.0)
    pipeline = OrderPipeline(
        storage=storage, kis=kis, market=MarketClock(enforce=False), readiness=AlwaysReady(),
        metrics=Metrics(), coordinator=keeper, shared=True, claim_every_s=0.5,
    )
    keeper.add_work("kis:", pipeline)
    keeper.add_work("kis:", LeaseChanges(changed))
    intake = StorageIntake(storage, pipeline, instance_id=keeper.instance_id)
    try:
        await storage.signals.start()
        pipeline.start_claiming()
        await keeper.start()
        yield Instance(storage, keeper, pipeline, intake)
    finally:
        await keeper.drain()
        await keeper.close()
        await pipeline.close()
        await storage.close()


async def register(storage: Storage, user_id: int, name: str | None, sim: SimAccount) -> int:
    account = (
        await storage.accounts.default(user_id) if name is None
        else await storage.accounts.create(user_id, name)
    )
    assert account is not None
    await storage.key_sets.save(
        user_id, sim.env, app_key=sim.app_key, app_secret=sim.app_secret, cano=sim.cano,
        product_code=sim.product_code, hts_id=sim.hts_id, account_id=account.id,
    )
    await storage.key_sets.record_checks(user_id, sim.env, {"token": True}, True,
                                         account_id=account.id)
    return account.id


async def test_a_fan_out_over_keys_owned_by_two_instances_places_each_order_once() -> None:
    if not PG_URL:
        pytest.skip("several instances need PostgreSQL (MOAHOOK_TEST_DATABASE_URL)")
    main_sim, isa_sim = demo_account(), generate_accounts(1, prefix="inst")[0]
    sim = KisSimulator([main_sim, isa_sim],
                       rate_limits={Environment.PAPER: 1000, Environment.REAL: 1000})
    await sim.start()
    http = httpx.AsyncClient(timeout=5.0)
    kis = KisClient(endpoints=Endpoints(rest={e: sim.rest_url(e) for e in Environment}, ws={}),
                    http=http, token_store=MemoryTokenStore())
    master = secrets.token_bytes(32)
    try:
        async with schema() as name:
            setup = await Storage.open(PG_URL, [master], schema=name)
            try:
                user = await setup.users.get_or_create(7, 7)
                main_id = await register(setup, user.id, None, main_sim)
                isa_id = await register(setup, user.id, "isa", isa_sim)
                token = await setup.users.webhook_token(user.id)
            finally:
                await setup.close()
            changed = asyncio.Event()
            async with instance("a", name, master, kis, changed) as a, \
                    instance("b", name, master, kis, changed) as b:
                def each_holds_a_key() -> bool:
                    held = [{n for n in i.keeper.held_names() if n.startswith("kis:")}
                            for i in (a, b)]
                    return all(len(h) == 1 for h in held) and held[0] != held[1]

                await until(each_holds_a_key, changed)
                raw = json.dumps({"ticker": "005930", "action": "buy", "quantity": "1",
                                  "account": "all", "id": "fan-1"}).encode()
                answer = await a.intake.submit(token, raw, parse_alert(raw),
                                               datetime.now(UTC))
                # A repeat through the other instance is the same alert, nothing new.
                again = await b.intake.submit(token, raw, parse_alert(raw), datetime.now(UTC))
                assert type(again).__name__ == "Duplicate"
                assert again.alert_id == answer.alert_id  # type: ignore[union-attr]

                # The key's owner elsewhere hears of its row and places it.
                await sim.wait_for(lambda: len(sim.orders) >= 2, BOUND)
                await asyncio.wait_for(a.pipeline.wait_idle(), BOUND)
                await asyncio.wait_for(b.pipeline.wait_idle(), BOUND)
                async with a.storage.db.session() as session:
                    done = list((await session.execute(
                        select(Alert).where(col(Alert.parent_id)
                                            == int(answer.alert_id))  # type: ignore[union-attr]
                        .order_by(col(Alert.id))
                    )).scalars().all())
                assert sorted(o.cano for o in sim.orders) == sorted([main_sim.cano,
                                                                    isa_sim.cano])
                # Each account's row was acted on by the owner of that account's key.
                owner = {
                    i.keeper.instance_id: {n for n in i.keeper.held_names()
                                           if n.startswith("kis:")}
                    for i in (a, b)
                }
                for row in done:
                    assert row.claimed_by is not None and row.lease in owner[row.claimed_by]
                assert {row.account_id for row in done} == {main_id, isa_id}
                assert {row.claimed_by for row in done} == {a.keeper.instance_id,
                                                            b.keeper.instance_id}
                for row in done:
                    assert row.status == AlertStatus.DONE.value
                    order = await a.storage.orders.by_alert(row.id)
                    assert order is not None and order.account_id == row.account_id
    finally:
        await http.aclose()
        await sim.stop()
