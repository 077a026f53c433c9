"""Alerts: durable acceptance, the duplicate rule, concurrency, lifecycle."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from storage.facade import Storage
from storage.models import Alert
from storage.records import AlertStatus

from .conftest import FakeClock, Target


def _body(n: int, with_id: bool = True) -> tuple[str, dict[str, object]]:
    parsed: dict[str, object] = {"ticker": "005930", "action": "buy", "quantity": n}
    if with_id:
        parsed["id"] = f"strat-{n}"
    return json.dumps(parsed), parsed


async def _alert_rows(store: Storage) -> int:
    """Alerts stored to be acted on (dropped repeats are recorded too, for /log)."""
    async with store.db.session() as session:
        return int(
            (
                await session.execute(
                    select(func.count())
                    .select_from(Alert)
                    .where(col(Alert.status) != AlertStatus.DUPLICATE.value)
                )
            ).scalar_one()
        )


@pytest.mark.parametrize("status", [AlertStatus.REFUSED, AlertStatus.FAILED])
@pytest.mark.parametrize("key", ["strat-1", None])
async def test_a_refused_or_failed_alert_does_not_block_its_retry(
    store: Storage, status: AlertStatus, key: str | None
) -> None:
    """A resend of an alert that was refused (paused, outside hours) is a new alert, with
    or without `id` (it was answered `duplicate` and silently dropped)."""
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    raw, parsed = _body(1, with_id=key is not None)
    first = await store.alerts.accept(user.id, raw, parsed, key)
    await store.alerts.finish(first.alert_id, status, "acting on alerts is paused")
    retry = await store.alerts.accept(user.id, raw, parsed, key)
    assert not retry.duplicate and retry.alert_id != first.alert_id
    # The retry is in flight: a third copy is its duplicate.
    third = await store.alerts.accept(user.id, raw, parsed, key)
    assert third.duplicate and third.alert_id == retry.alert_id


@pytest.mark.parametrize("status", [AlertStatus.PROCESSING, AlertStatus.DONE])
async def test_an_alert_in_flight_or_ordered_still_blocks_a_resend(
    store: Storage, status: AlertStatus
) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    raw, parsed = _body(1, with_id=False)
    first = await store.alerts.accept(user.id, raw, parsed, None)
    await store.alerts.finish(first.alert_id, status, None)
    again = await store.alerts.accept(user.id, raw, parsed, None)
    assert again.duplicate and again.alert_id == first.alert_id


async def test_a_dropped_duplicate_is_recorded_for_the_log(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    raw, parsed = _body(1, with_id=False)
    first = await store.alerts.accept(user.id, raw, parsed, None)
    again = await store.alerts.accept(user.id, raw, parsed, None)
    assert again.duplicate
    newest = (await store.alerts.recent(user.id))[0]
    assert newest.id != first.alert_id
    assert newest.status is AlertStatus.DUPLICATE
    assert newest.reason_key == "duplicate"
    assert newest.reason_params == {"alert_id": str(first.alert_id)}
    # Never picked up by the pipeline after a restart.
    assert [a.id for a in await store.alerts.unprocessed()] == [first.alert_id]


async def test_same_id_within_24h_is_a_duplicate(store: Storage, clock: FakeClock) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    raw, parsed = _body(1)
    first = await store.alerts.accept(user.id, raw, parsed, "strat-1")
    assert not first.duplicate
    clock.advance(23 * 3600)
    # Same id, even with a different body: the id decides.
    again = await store.alerts.accept(user.id, raw + " ", parsed, "strat-1")
    assert again.duplicate and again.alert_id == first.alert_id
    clock.advance(3600 + 1)
    later = await store.alerts.accept(user.id, raw, parsed, "strat-1")
    assert not later.duplicate and later.alert_id != first.alert_id


async def test_same_body_without_id_within_60s(store: Storage, clock: FakeClock) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    raw, parsed = _body(1, with_id=False)
    first = await store.alerts.accept(user.id, raw, parsed, None)
    clock.advance(59)
    assert (await store.alerts.accept(user.id, raw, parsed, None)).alert_id == first.alert_id
    other_raw, other = _body(2, with_id=False)
    assert not (await store.alerts.accept(user.id, other_raw, other, None)).duplicate
    clock.advance(2)
    assert not (await store.alerts.accept(user.id, raw, parsed, None)).duplicate


async def test_duplicates_are_per_user(store: Storage) -> None:
    a = await store.users.get_or_create(telegram_id=1, chat_id=1)
    b = await store.users.get_or_create(telegram_id=2, chat_id=2)
    raw, parsed = _body(1)
    assert not (await store.alerts.accept(a.id, raw, parsed, "strat-1")).duplicate
    assert not (await store.alerts.accept(b.id, raw, parsed, "strat-1")).duplicate


async def test_long_idempotency_keys_still_deduplicate(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    key = "k" * 5000
    first = await store.alerts.accept(user.id, "{}", {}, key)
    assert (await store.alerts.accept(user.id, "{} ", {}, key)).alert_id == first.alert_id
    assert not (await store.alerts.accept(user.id, "{}", {}, key + "x")).duplicate


async def test_500_concurrent_inserts_none_lost(store: Storage, target: Target) -> None:
    users = [await store.users.get_or_create(telegram_id=10_000 + i, chat_id=10_000 + i)
             for i in range(50)]
    jobs = []
    for n in range(500):
        raw, parsed = _body(n)
        jobs.append(store.alerts.accept(users[n % 50].id, raw, parsed, f"strat-{n}"))
    results = await asyncio.wait_for(asyncio.gather(*jobs), timeout=30)
    assert not any(r.duplicate for r in results)
    assert len({r.alert_id for r in results}) == 500
    assert await _alert_rows(store) == 500
    for user in users[:3]:
        assert len(await store.alerts.recent(user.id, 20)) == 10


async def test_concurrent_repeats_of_one_alert_store_exactly_one(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    raw, parsed = _body(7)
    with_id = [store.alerts.accept(user.id, raw, parsed, "strat-7") for _ in range(50)]
    raw2, parsed2 = _body(8, with_id=False)
    without_id = [store.alerts.accept(user.id, raw2, parsed2, None) for _ in range(50)]
    results = await asyncio.wait_for(asyncio.gather(*with_id, *without_id), timeout=30)
    for group in (results[:50], results[50:]):
        assert sum(not r.duplicate for r in group) == 1
        assert len({r.alert_id for r in group}) == 1
    assert await _alert_rows(store) == 2


async def test_lifecycle_claim_finish_recover(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    ids = []
    for n in range(4):
        raw, parsed = _body(n)
        ids.append((await store.alerts.accept(user.id, raw, parsed, f"strat-{n}")).alert_id)
    record = await store.alerts.get(ids[0])
    assert record is not None and record.status is AlertStatus.ACCEPTED
    assert record.parsed == {"ticker": "005930", "action": "buy", "quantity": 0, "id": "strat-0"}

    [claimed] = await store.alerts.claim("a/1", 1, None, limit=1)
    assert claimed.id == ids[0] and claimed.status is AlertStatus.PROCESSING
    [nxt] = await store.alerts.claim("a/1", 1, None, limit=1)  # the next one, not ids[0]
    assert nxt.id == ids[1]

    await store.alerts.mark_done(ids[0])
    await store.alerts.mark_refused(ids[2], "paused")
    # After a crash: the claimed-but-unfinished one and the untouched one remain.
    assert [a.id for a in await store.alerts.unprocessed()] == [ids[1], ids[3]]
    recent = await store.alerts.recent(user.id, 20)
    assert [a.id for a in recent] == list(reversed(ids))
    refused = await store.alerts.get(ids[2])
    assert refused is not None and refused.status is AlertStatus.REFUSED
    assert refused.reason == "paused"
    await store.alerts.mark_failed(ids[3], "KIS unreachable")
    assert await store.alerts.claim("a/1", 1, None) == []


async def test_recent_is_limited(store: Storage, clock: FakeClock) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    for n in range(25):
        raw, parsed = _body(n)
        await store.alerts.accept(user.id, raw, parsed, f"strat-{n}")
        clock.advance(1)
    recent = await store.alerts.recent(user.id, 20)
    assert len(recent) == 20 and recent[0].received_at - recent[-1].received_at == timedelta(
        seconds=19)


async def test_one_bad_alert_does_not_sink_its_batch(store: Storage) -> None:
    import pytest
    from sqlalchemy.exc import IntegrityError

    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    jobs = [store.alerts.accept(user.id, f'{{"n":{n}}}', {"n": n}, f"ok-{n}") for n in range(5)]
    jobs.insert(2, store.alerts.accept(987_654, "{}", {}, "no-such-user"))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    assert isinstance(results[2], IntegrityError)  # foreign key: unknown user
    good = [r for i, r in enumerate(results) if i != 2]
    assert all(not isinstance(r, BaseException) and not r.duplicate for r in good)
    assert await _alert_rows(store) == 5
    with pytest.raises(IntegrityError):
        await store.alerts.accept(987_654, "{}", {}, "again")


async def test_batched_accepts_apply_both_windows(store: Storage, clock: FakeClock) -> None:
    """Concurrent accepts go through the set-based batch path: same rule as one by one."""
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    other = await store.users.get_or_create(telegram_id=2, chat_id=2)
    raw_id, parsed_id = _body(1)
    raw_plain, parsed_plain = _body(2, with_id=False)
    with_id = await store.alerts.accept(user.id, raw_id, parsed_id, "strat-1")
    plain = await store.alerts.accept(user.id, raw_plain, parsed_plain, None)
    clock.advance(61)  # the body window has passed, the id window has not
    results = await asyncio.wait_for(
        asyncio.gather(
            store.alerts.accept(user.id, raw_id + " ", parsed_id, "strat-1"),
            store.alerts.accept(user.id, raw_plain, parsed_plain, None),
            store.alerts.accept(user.id, raw_plain, parsed_plain, None),
            store.alerts.accept(other.id, raw_id, parsed_id, "strat-1"),
            store.alerts.accept(other.id, raw_id, parsed_id, "strat-1"),
        ),
        timeout=30,
    )
    assert results[0].duplicate and results[0].alert_id == with_id.alert_id
    assert not results[1].duplicate and results[1].alert_id != plain.alert_id
    assert results[2].duplicate and results[2].alert_id == results[1].alert_id
    assert not results[3].duplicate
    assert results[4].duplicate and results[4].alert_id == results[3].alert_id
    assert await _alert_rows(store) == 4


async def test_the_group_commit_path_stores_batches_and_repeats_without_falling_back(
    store: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """Every statement of the fast path runs as compiled (a bound IN list once broke it on
    the direct SQLite connection, and each alert went the slow way, ten times slower)."""
    users = [await store.users.get_or_create(telegram_id=n, chat_id=n) for n in range(1, 4)]
    raw, parsed = _body(1, with_id=False)
    with caplog.at_level("WARNING", logger="storage.repositories.alerts"):
        await store.alerts.accept(users[0].id, raw, parsed, None)  # a lone alert
        results = await asyncio.gather(*(
            store.alerts.accept(user.id, raw, parsed, key)
            for user in users for key in (None, "k", "k")
        ))
    # u1's plain copy repeats the lone alert; each user's second "k" repeats the first.
    assert [r.duplicate for r in results] == [
        True, False, True, False, False, True, False, False, True,
    ]
    assert caplog.records == []
