"""The notification outbox: idempotent enqueue, due order, retries, give-up."""

from __future__ import annotations

from datetime import timedelta

from storage.facade import Storage
from storage.records import OutboxStatus

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
