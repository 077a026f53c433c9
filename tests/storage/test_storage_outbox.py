"""The notification outbox: idempotent enqueue, due order, retries, give-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kis.env import Environment
from storage.facade import Storage
from storage.records import FillResult, OutboxMessage, OutboxStatus
from storage.repositories.outbox import OutboxEntry

from .conftest import FakeClock


async def test_enqueue_is_idempotent_per_dedupe_key(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=1, chat_id=1)
    payload = {"kind": "order_filled", "symbol": "005930", "quantity": 3}
    assert await store.outbox.enqueue(user.id, 1, "order_filled", payload, "fill:n1")
    assert not await store.outbox.enqueue(user.id, 1, "order_filled", payload, "fill:n1")
    (message,) = await store.outbox.due(10)
    assert message.payload == payload and message.status is OutboxStatus.PENDING
    assert await store.outbox.pending_count() == 1


async def test_due_retry_and_give_up(store: Storage, clock: FakeClock) -> None:
    for n in range(3):
        await store.outbox.enqueue(None, 100 + n, "notice", {"n": n}, f"k{n}")
    due = await store.outbox.due(10)
    assert [m.chat_id for m in due] == [100, 101, 102]
    assert len(await store.outbox.due(2)) == 2

    await store.outbox.mark_sent(due[0].id)
    await store.outbox.mark_failed(due[1].id, "retry_after=5", clock() + timedelta(seconds=5))
    await store.outbox.mark_failed(due[2].id, "chat not found", None)
    assert await store.outbox.due(10) == []
    clock.advance(5)
    (retry,) = await store.outbox.due(10)
    assert retry.id == due[1].id and retry.attempts == 1 and retry.last_error == "retry_after=5"
    assert await store.outbox.pending_count() == 1


async def test_add_returns_the_new_row_as_stored(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=2, chat_id=2)
    payload = {"kind": "order_accepted", "symbol": "005930"}
    added = await store.outbox.add(user.id, 2, "order_accepted", payload, "acc:1")
    assert added is not None
    assert await store.outbox.add(user.id, 2, "order_accepted", payload, "acc:1") is None
    (stored,) = await store.outbox.due(10)
    assert (added.id, added.user_id, added.chat_id, added.kind, added.payload) == (
        stored.id, stored.user_id, stored.chat_id, stored.kind, stored.payload
    )
    assert added.status is OutboxStatus.PENDING and added.attempts == 0


async def test_a_fill_and_its_notice_are_stored_together_once(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=3, chat_id=3)
    seen: list[FillResult] = []

    def notice(result: FillResult) -> OutboxEntry:
        seen.append(result)
        return OutboxEntry(3, "order_filled", {"quantity": 2}, "fill:3:n1")

    async def record() -> tuple[FillResult, OutboxMessage | None]:
        return await store.fills.record_and_queue(
            user.id, Environment.PAPER, "0000000009", quantity=2, price=1000,
            filled_at=datetime(2026, 1, 5, 1, 0, tzinfo=UTC), notice_key="n1", notice=notice,
        )

    result, queued = await record()
    assert result.new and result.order is None  # order number not known yet: unlinked
    assert queued is not None and queued.payload == {"quantity": 2}
    assert [m.id for m in await store.outbox.due(10)] == [queued.id]
    again, requeued = await record()  # KIS repeats the notice
    assert not again.new and requeued is None
    assert len(seen) == 1 and await store.outbox.pending_count() == 1


async def test_no_notice_for_a_fill_leaves_the_outbox_alone(store: Storage) -> None:
    user = await store.users.get_or_create(telegram_id=4, chat_id=4)
    result, queued = await store.fills.record_and_queue(
        user.id, Environment.PAPER, "0000000010", quantity=1, price=10,
        filled_at=datetime(2026, 1, 5, 1, 0, tzinfo=UTC), notice_key="n2",
        notice=lambda _result: None,
    )
    assert result.new and queued is None
    assert await store.outbox.pending_count() == 0
