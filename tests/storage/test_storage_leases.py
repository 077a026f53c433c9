"""Leases and instances: one holder at a time, renewal, expiry, release, epochs."""

from __future__ import annotations

import asyncio

import pytest

from storage.facade import Storage
from tests.storage.conftest import FakeClock, Target

TTL = 10.0


async def test_one_holder_at_a_time_and_epoch_grows_on_takeover(store: Storage) -> None:
    ttl = TTL
    first = await store.leases.acquire("kis:abc:paper", "a/1", ttl)
    assert first == 1
    assert await store.leases.acquire("kis:abc:paper", "b/1", ttl) is None
    # The holder asking again keeps its epoch (a renewal, not a takeover).
    assert await store.leases.acquire("kis:abc:paper", "a/1", ttl) == 1
    # A holder that stops renewing: its last renewal ran out (a 0 s renewal stands for
    # "the time has passed" on both the database's clock and the test clock).
    assert await store.leases.renew("a/1", 0.0) == {"kis:abc:paper": 1}
    assert await store.leases.acquire("kis:abc:paper", "b/1", ttl) == 2
    # The old holder's renewal no longer covers it.
    assert await store.leases.renew("a/1", ttl) == {}
    assert await store.leases.renew("b/1", ttl) == {"kis:abc:paper": 2}
    held = await store.leases.get("kis:abc:paper")
    assert held is not None and held.holder == "b/1" and held.epoch == 2


async def test_release_hands_over_at_once_with_a_new_epoch(store: Storage) -> None:
    assert await store.leases.acquire("telegram", "a/1", TTL) == 1
    assert await store.leases.acquire("kis:k:real", "a/1", TTL) == 1
    assert await store.leases.release("a/1", ["telegram"]) == ["telegram"]
    assert await store.leases.acquire("telegram", "b/1", TTL) == 2
    assert await store.leases.renew("a/1", TTL) == {"kis:k:real": 1}
    assert sorted(await store.leases.release("a/1")) == ["kis:k:real"]
    assert [lease.name for lease in await store.leases.holders()] == ["telegram"]


async def test_concurrent_acquires_give_the_lease_to_exactly_one(store: Storage) -> None:
    holders = [f"i{n}/x" for n in range(8)]
    results = await asyncio.gather(
        *(store.leases.acquire("kis:contended:paper", h, TTL) for h in holders)
    )
    assert sum(r is not None for r in results) == 1


async def test_forget_unused_keeps_held_and_wanted_leases(store: Storage) -> None:
    await store.leases.acquire("kis:a:paper", "x/1", TTL)
    await store.leases.acquire("kis:b:paper", "x/1", TTL)
    await store.leases.acquire("kis:c:paper", "x/1", TTL)
    await store.leases.release("x/1", ["kis:b:paper", "kis:c:paper"])
    assert await store.leases.forget_unused(keep=["kis:c:paper"]) == 1
    assert await store.leases.get("kis:b:paper") is None
    assert await store.leases.get("kis:c:paper") is not None
    assert await store.leases.get("kis:a:paper") is not None


async def test_instances_live_excludes_draining_and_silent(
    store: Storage, clock: FakeClock, target: Target
) -> None:
    await store.instances.register("web-1/aaa", "web-1")
    await store.instances.register("web-2/bbb", "web-2")
    assert [i.name for i in await store.instances.live(within=TTL)] == ["web-1", "web-2"]
    await store.instances.heartbeat("web-2/bbb", draining=True)
    assert [i.name for i in await store.instances.live(within=TTL)] == ["web-1"]
    if target.backend == "sqlite":
        clock.advance(TTL + 1)
        assert await store.instances.live(within=TTL) == []
        assert await store.instances.prune(older_than=TTL) == 2


@pytest.mark.parametrize("state", ["KeysFlow:app_secret", None])
async def test_conversation_data_is_encrypted_at_rest(
    store: Storage, target: Target, state: str | None
) -> None:
    key = "bot:42:42"
    secret = "A" * 180  # an App Secret typed in the middle of /keys
    await store.conversations.set_state(key, state)
    await store.conversations.set_data(key, {"app_secret": secret, "step": 2})
    assert await store.conversations.get_state(key) == state
    assert await store.conversations.get_data(key) == {"app_secret": secret, "step": 2}
    async with store.db.session() as session:
        from sqlalchemy import text

        raw = (await session.execute(text("SELECT data_enc FROM conversations"))).scalar_one()
    assert secret.encode() not in bytes(raw)
    # Cleared state and data leave no row behind.
    await store.conversations.set_state(key, None)
    await store.conversations.set_data(key, {})
    assert await store.conversations.keys() == []
