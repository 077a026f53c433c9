"""Who acts on an alert when several instances share the database: claims never take an
alert twice, a new lease owner takes over what the old one left, and an alert handed
back or rerouted wakes its owner."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from storage.facade import Storage
from storage.records import AlertStatus
from storage.repositories.alerts import JOBS_CHANNEL
from tests.storage.conftest import Target

LEASE = "kis:" + "a" * 64 + ":paper"


async def _accept(store: Storage, user_id: int, n: int, **kw: object) -> int:
    body = json.dumps({"ticker": "005930", "action": "buy", "quantity": 1, "id": f"c{n}"})
    result = await store.alerts.accept(user_id, body, json.loads(body), f"c{n}", **kw)  # type: ignore[arg-type]
    return result.alert_id


@pytest.fixture
async def second(store: Storage, target: Target, key1: bytes) -> AsyncIterator[Storage]:
    """Another instance: its own connections to the same database."""
    other = await Storage.open(target.url, [key1], schema=target.schema)
    try:
        yield other
    finally:
        await other.close()


async def test_two_instances_racing_never_claim_an_alert_twice(
    store: Storage, second: Storage
) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    taken: dict[int, str] = {}
    for round_ in range(1000):
        ids = set(
            await asyncio.gather(*(_accept(store, user.id, round_ * 3 + k, lease=LEASE)
                                   for k in range(3)))
        )
        a, b = await asyncio.gather(
            store.alerts.claim("a/1", 1, LEASE), second.alerts.claim("b/1", 1, LEASE)
        )
        claimed_a, claimed_b = {r.id for r in a}, {r.id for r in b}
        assert not claimed_a & claimed_b, f"round {round_}: claimed twice"
        assert claimed_a | claimed_b == ids, f"round {round_}: an alert was left behind"
        for alert_id in claimed_a:
            taken[alert_id] = "a/1"
        for alert_id in claimed_b:
            taken[alert_id] = "b/1"
    assert len(taken) == 3000


async def test_claims_are_per_lease_and_alerts_without_a_lease_go_to_anyone(
    store: Storage,
) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    mine = await _accept(store, user.id, 1, lease=LEASE)
    other = await _accept(store, user.id, 2, lease="kis:" + "b" * 64 + ":paper")
    keyless = await _accept(store, user.id, 3)
    assert [a.id for a in await store.alerts.claim("a/1", 4, LEASE)] == [mine]
    assert [a.id for a in await store.alerts.claim("a/1", 0, None)] == [keyless]
    record = await store.alerts.get(mine)
    assert record is not None and record.status is AlertStatus.PROCESSING
    assert record.lease == LEASE
    assert (await store.alerts.get(other)).status is AlertStatus.ACCEPTED  # type: ignore[union-attr]


async def test_an_alert_taken_at_intake_is_not_claimed_again(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    alert_id = await _accept(store, user.id, 1, lease=LEASE, claim=("a/1", 3))
    record = await store.alerts.get(alert_id)
    assert record is not None and record.status is AlertStatus.PROCESSING
    assert await store.alerts.claim("b/1", 1, LEASE) == []


async def test_new_owner_takes_over_what_the_old_one_left(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    half_done = await _accept(store, user.id, 1, lease=LEASE, claim=("a/1", 1))
    waiting = await _accept(store, user.id, 2, lease=LEASE)
    finished = await _accept(store, user.id, 3, lease=LEASE, claim=("a/1", 1))
    await store.alerts.mark_done(finished)
    taken = await store.alerts.take_over("b/1", 2, LEASE)
    assert [a.id for a in taken] == [half_done, waiting]
    # The old owner can no longer hand them back (they are not its any more)…
    assert not await store.alerts.release(half_done, "a/1", 1)
    # …and the new owner's own claims are not taken over by itself again.
    assert await store.alerts.take_over("b/1", 2, LEASE) == []


async def test_release_and_reroute_wake_the_owner(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    heard: asyncio.Queue[str] = asyncio.Queue()
    store.signals.listen(JOBS_CHANNEL, heard.put_nowait)
    await store.signals.start()
    first = await _accept(store, user.id, 1, lease=LEASE, claim=("a/1", 1))
    assert await store.alerts.release(first, "a/1", 1)
    assert await asyncio.wait_for(heard.get(), 5) == LEASE
    assert [a.id for a in await store.alerts.claim("b/1", 2, LEASE)] == [first]
    other = "kis:" + "c" * 64 + ":real"
    assert await store.alerts.reroute(first, "b/1", 2, other)
    assert await asyncio.wait_for(heard.get(), 5) == other
    record = await store.alerts.get(first)
    assert record is not None and record.lease == other
    assert record.status is AlertStatus.ACCEPTED


async def test_an_alert_for_a_lease_held_elsewhere_signals_its_owner(
    store: Storage, target: Target
) -> None:
    if target.backend != "postgresql":
        pytest.skip("one process on SQLite: its alerts are never for another instance")
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    heard: asyncio.Queue[str] = asyncio.Queue()
    store.signals.listen(JOBS_CHANNEL, heard.put_nowait)
    await store.signals.start()
    await asyncio.gather(*(_accept(store, user.id, n, lease=LEASE) for n in range(5)))
    assert await asyncio.wait_for(heard.get(), 5) == LEASE
    # Taken at intake (this instance owns the lease): nobody else needs waking.
    await _accept(store, user.id, 9, lease="kis:" + "d" * 64 + ":paper", claim=("a/1", 1))
    await _accept(store, user.id, 10, lease=LEASE)
    assert await asyncio.wait_for(heard.get(), 5) == LEASE


async def test_an_order_is_written_only_under_a_lease_still_held(
    store: Storage, target: Target
) -> None:
    from kis.env import Environment
    from storage.errors import LeaseLost, OrderAlreadyExists
    from storage.repositories.orders import Fence

    if target.backend != "postgresql":
        pytest.skip("the fence guards several instances: PostgreSQL")
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    first = await _accept(store, user.id, 1, lease=LEASE, claim=("a/1", 1))
    second_alert = await _accept(store, user.id, 2, lease=LEASE, claim=("a/1", 1))
    epoch = await store.leases.acquire(LEASE, "a/1", 10.0)
    assert epoch == 1

    def pending(alert_id: int, fence: Fence) -> object:
        return store.orders.create_pending(
            alert_id, user_id=user.id, environment=Environment.PAPER, symbol="005930",
            side="buy", order_type="market", quantity=1, fence=fence,
        )

    order = await pending(first, Fence(LEASE, "a/1", 1))  # type: ignore[misc]
    assert order.alert_id == first
    with pytest.raises(OrderAlreadyExists):
        await pending(first, Fence(LEASE, "a/1", 1))  # type: ignore[misc]
    # Another instance took the lease over (a/1 stalled past its lease): a/1 may not
    # write — so it cannot send — the next order.
    await store.leases.renew("a/1", 0.0)
    assert await store.leases.acquire(LEASE, "b/1", 10.0) == 2
    with pytest.raises(LeaseLost):
        await pending(second_alert, Fence(LEASE, "a/1", 1))  # type: ignore[misc]
    assert await store.orders.by_alert(second_alert) is None
    order = await pending(second_alert, Fence(LEASE, "b/1", 2))  # type: ignore[misc]
    assert order.alert_id == second_alert
