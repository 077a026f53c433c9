"""Three `moahook serve` processes on one PostgreSQL act as one service (SPEC 12): every
instance takes alerts for every user, each key's orders are placed by its lease owner
exactly once, a killed owner's keys are taken over within the lease, and a rolling
restart of every instance loses nothing."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from pathlib import Path

import pytest

from tests.moahook.cluster import Cluster, ClusterUser, cluster, eventually, settled
from tests.moahook.pgdb import fresh_database

LEASE_S = 3.0
WAIT = 20.0
_ids = itertools.count(1)


def buy(quantity: int = 1) -> dict[str, object]:
    return {"ticker": "005930", "action": "buy", "quantity": str(quantity),
            "id": f"t{next(_ids)}"}


async def placed_once(group: Cluster, accepted: list[tuple[ClusterUser, int]]) -> None:
    """Every acknowledged alert has exactly one order, and KIS got exactly those."""
    alert_ids = [alert_id for _, alert_id in accepted]
    try:
        await group.sim.wait_for(lambda: len(group.sim.orders) >= len(accepted), WAIT)
    except TimeoutError:
        orders = await group.orders_of(alert_ids)
        stuck = [await group.storage.alerts.get(a) for a in alert_ids if a not in orders]
        raise AssertionError(
            f"{len(group.sim.orders)} orders at KIS for {len(accepted)} alerts; without an "
            f"order: {[(a.id, a.status.value, a.lease, a.reason) for a in stuck if a][:5]}"
        ) from None

    async def recorded() -> bool:  # the owners record KIS's answers in their own time
        orders = await group.orders_of(alert_ids)
        return len(orders) == len(alert_ids) and all(o.order_no for o in orders.values())

    await eventually(recorded, WAIT)
    orders = await group.orders_of(alert_ids)
    numbers = [order.order_no for order in orders.values()]
    assert len(set(numbers)) == len(numbers)
    assert len(group.sim.orders) == len(accepted), "an order reached KIS twice"
    for user in group.users:
        mine = sum(1 for u, _ in accepted if u is user)
        assert group.sim_orders_for(user) == mine, user.account.hts_id


async def test_any_instance_takes_any_alert_and_the_owner_places_it_once(
    tmp_path: Path,
) -> None:
    async with fresh_database() as url, cluster(tmp_path, url, lease_seconds=LEASE_S) as group:
        await settled(group)
        accepted: list[tuple[ClusterUser, int]] = []
        for user in group.users:
            for proc in group.procs:  # each user's alert through every instance
                status, answer = await group.post(user, buy(), to=proc, retry_elsewhere=False)
                assert (status, answer["status"]) == (200, "accepted"), answer
                accepted.append((user, int(str(answer["alert_id"]))))
        # The same alert (same id) sent to another instance is one order (duplicate rule).
        user, alert_id = accepted[0]
        repeat = {**buy(), "id": "same-everywhere"}
        first = await group.post(user, repeat, to=group.procs[0], retry_elsewhere=False)
        again = await group.post(user, repeat, to=group.procs[1], retry_elsewhere=False)
        assert first[1]["status"] == "accepted" and again[1]["status"] == "duplicate"
        assert again[1]["alert_id"] == first[1]["alert_id"]
        accepted.append((user, int(str(first[1]["alert_id"]))))
        await placed_once(group, accepted)
        # Keys are spread: every instance owns some.
        owners = {await group.owner(user) for user in group.users}
        assert len(owners) == len(group.procs)
        # One WebSocket session per app key, never a second one refused by KIS.
        assert group.sim.ws.in_use_refusals == {}
        # Each instance names itself on its log lines (SPEC 12).
        for proc in group.procs:
            assert f"INFO [{proc.env['MOAHOOK_INSTANCE_NAME']}] " in proc.output


async def test_a_killed_owners_key_is_taken_over_within_the_lease(tmp_path: Path) -> None:
    async with fresh_database() as url, cluster(tmp_path, url, lease_seconds=LEASE_S) as group:
        await settled(group)
        user = group.users[0]
        owner = await group.owner(user)
        assert owner is not None
        before = group.sim_orders_for(user)
        started = time.monotonic()
        await owner.kill()  # kill -9: no hand-over of any kind
        status, answer = await group.post(user, buy())
        assert (status, answer["status"]) == (200, "accepted"), answer
        await group.sim.wait_for(lambda: group.sim_orders_for(user) == before + 1, WAIT)
        took = time.monotonic() - started
        assert took <= LEASE_S + 2, f"the next order came {took:.1f} s after the kill"
        await placed_once(group, [(user, int(str(answer["alert_id"])))])


@pytest.mark.timeout(180)  # three instances stop and start, one after another
async def test_a_rolling_restart_while_alerts_flow_loses_nothing(tmp_path: Path) -> None:
    async with fresh_database() as url, cluster(tmp_path, url, lease_seconds=LEASE_S) as group:
        await settled(group)
        accepted: list[tuple[ClusterUser, int]] = []
        refused: list[tuple[int, dict[str, object]]] = []
        flowing = asyncio.Event()
        stop = asyncio.Event()

        async def drive() -> None:
            for n in itertools.count():
                if stop.is_set():
                    return
                user = group.users[n % len(group.users)]
                status, answer = await group.post(user, buy())
                if status == 200 and answer.get("status") == "accepted":
                    accepted.append((user, int(str(answer["alert_id"]))))
                else:
                    refused.append((status, answer))
                flowing.set()
                # The driver's pace: a paper key takes about 2 orders a second (KIS.md 9),
                # so each of the six keys gets about one a second.
                await asyncio.sleep(0.15)

        driver = asyncio.create_task(drive())
        await asyncio.wait_for(flowing.wait(), WAIT)
        for n, old in enumerate(list(group.procs)):
            stopping = time.monotonic()
            old.signal(signal.SIGTERM)
            assert await old.wait(15) == 0, old.output
            assert time.monotonic() - stopping < 15  # SPEC 12: exits within 15 s
            assert "Traceback" not in old.output
            await group.start(f"web-{n}-new")
        await settled(group)
        stop.set()
        await driver
        assert not refused, refused[:3]
        assert len(accepted) > 40
        await placed_once(group, accepted)
        assert group.sim.ws.in_use_refusals == {}
