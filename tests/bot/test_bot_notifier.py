"""The outbox notifier against the Bot API stand-in over loopback, with real SQLite."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram import Bot

from bot.factory import create_bot_for
from bot.notifier import Notifier
from bot.standin import BotApiStandIn
from storage.facade import Storage
from storage.notices import Notice, NoticeKind
from storage.records import OutboxMessage

AT = datetime(2026, 5, 11, 0, 1, 2, tzinfo=UTC)


@dataclass
class Env:
    standin: BotApiStandIn
    storage: Storage
    bot: Bot


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", [os.urandom(32)])
    try:
        async with BotApiStandIn() as standin:
            bot = create_bot_for(standin.token, standin.base_url)
            try:
                yield Env(standin, storage, bot)
            finally:
                await bot.session.close()
    finally:
        await storage.close()


async def _user(env: Env, telegram_id: int, lang: str = "ko") -> int:
    env.standin.user(telegram_id, f"u{telegram_id}", language_code=lang)
    return (await env.storage.users.get_or_create(telegram_id, telegram_id, lang)).id


def _fill(quantity: int = 3, price: int = 71500) -> Notice:
    return Notice(kind=NoticeKind.ORDER_FILLED, env="paper", at=AT, symbol="005930",
                  name="삼성전자", side="buy", quantity=quantity, price=price,
                  filled=quantity, ordered=quantity)


async def _enqueue(env: Env, user_id: int, chat_id: int, notice: Notice, key: str) -> None:
    assert await env.storage.outbox.enqueue(
        user_id, chat_id, notice.kind.value, notice.to_payload(), key
    )


class Outcomes:
    """The notifier's send outcomes, awaitable: `await outcomes.final(n)`."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, outcome: str) -> None:
        self.seen.append(outcome)
        self._changed.set()

    async def final(self, count: int) -> None:
        async def reached() -> None:
            while sum(o in ("sent", "gave_up") for o in self.seen) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), 10)


def _notifier(env: Env, outcomes: Outcomes, **options: float) -> Notifier:
    return Notifier(env.bot, env.storage, poll_interval=0.05, on_send=outcomes, **options)


async def _settled(env: Env, notifier: Notifier, outcomes: Outcomes, count: int) -> None:
    """Every message reached a final outcome, and a fresh look finds nothing to send."""
    await outcomes.final(count)
    assert await env.storage.outbox.pending_count() == 0
    assert await notifier.dispatch_due() == 0


async def test_telegram_429_then_delivered_exactly_once(env: Env) -> None:
    user_id = await _user(env, 8001)
    await _enqueue(env, user_id, 8001, _fill(), "fill-1")
    env.standin.fail_next("sendMessage", 1, error_code=429, retry_after=1)
    outcomes = Outcomes()
    notifier = _notifier(env, outcomes)
    await notifier.start()
    try:
        chat = env.standin.user(8001, "u8001")
        message = await chat.wait_for_bot_message("✅ 체결 (", timeout=10)
        await _settled(env, notifier, outcomes, 1)
    finally:
        await notifier.close()

    assert "삼성전자 (005930) 매수 3주 @ 71,500원" in message.text
    assert "2026-05-11 09:01:02 KST" in message.text
    calls = env.standin.calls_to("sendMessage")
    assert [call.status for call in calls] == [429, 200]
    assert outcomes.seen == ["retry_after", "sent"]
    assert calls[1].time - calls[0].time >= 0.95  # retry_after honoured, not guessed
    assert len(chat.bot_messages()) == 1
    # Marked sent: nothing is left to send, not even far in the future.
    assert await env.storage.outbox.due(10, datetime(2100, 1, 1, tzinfo=UTC)) == []


async def test_a_notice_queued_while_stopped_is_sent_after_a_restart(env: Env) -> None:
    user_id = await _user(env, 8002, "en")
    outcomes = Outcomes()
    first = _notifier(env, outcomes)
    await first.start()
    await first.close()
    await _enqueue(env, user_id, 8002, _fill(2, 70000), "fill-restart")

    second = _notifier(env, outcomes)
    await second.start()
    try:
        message = await env.standin.user(8002, "u").wait_for_bot_message("Filled", timeout=10)
        await _settled(env, second, outcomes, 1)
    finally:
        await second.close()
    assert "2 sh @ 70,000 KRW" in message.text  # the user's language, read from storage
    assert len(env.standin.calls_to("sendMessage")) == 1


async def test_blocked_chat_is_given_up_and_others_still_get_theirs(env: Env) -> None:
    blocked_id = await _user(env, 8003)
    other_id = await _user(env, 8004)
    env.standin.user(8003, "u").block()
    await _enqueue(env, blocked_id, 8003, _fill(), "to-blocked")
    await _enqueue(env, other_id, 8004, _fill(5), "to-other")
    outcomes = Outcomes()
    notifier = _notifier(env, outcomes)
    await notifier.start()
    try:
        await env.standin.user(8004, "u").wait_for_bot_message("5주", timeout=10)
        await _settled(env, notifier, outcomes, 2)
    finally:
        await notifier.close()
    to_blocked = [c for c in env.standin.calls_to("sendMessage") if c.params["chat_id"] == "8003"]
    assert len(to_blocked) == 1 and to_blocked[0].status == 403  # tried once, not hammered
    assert await env.storage.outbox.pending_count() == 0


class FakeClock:
    """The notifier's monotonic clock and sleep: sleeping moves the clock, not wall time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_one_chat_keeps_order_and_is_paced(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await _user(env, 8005)
    for n in range(1, 6):
        await _enqueue(env, user_id, 8005, _fill(n), f"burst-{n}")
    clock = FakeClock()
    sent_at: list[float] = []  # the fake clock when each request left: the schedule
    send = env.bot.send_message

    async def stamped(chat_id: int, text: str) -> object:
        sent_at.append(clock())
        return await send(chat_id, text)

    monkeypatch.setattr(env.bot, "send_message", stamped)
    outcomes = Outcomes()
    notifier = Notifier(env.bot, env.storage, poll_interval=0.05, on_send=outcomes,
                        chat_rate=10.0, chat_burst=2, clock=clock, sleep=clock.sleep)
    await notifier.start()
    try:
        chat = env.standin.user(8005, "u")
        await chat.wait_for_bot_message("매수 5주", timeout=10)
        await _settled(env, notifier, outcomes, 5)
    finally:
        await notifier.close()
    texts = [m.text for m in chat.bot_messages()]
    assert [f"매수 {n}주" in text for n, text in enumerate(texts, start=1)] == [True] * 5
    gaps = [b - a for a, b in zip(sent_at, sent_at[1:], strict=False)]
    # A burst of 2 goes at once, then one every 1/chat_rate = 0.1 s.
    assert gaps == pytest.approx([0.0, 0.1, 0.1, 0.1]), gaps
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])  # paced by waiting, not by luck


async def test_a_bad_payload_is_failed_not_retried_forever(env: Env) -> None:
    user_id = await _user(env, 8006)
    assert await env.storage.outbox.enqueue(user_id, 8006, "x", {"kind": "nonsense"}, "bad")
    outcomes = Outcomes()
    notifier = _notifier(env, outcomes)
    await notifier.start()
    try:
        await _settled(env, notifier, outcomes, 1)
    finally:
        await notifier.close()
    assert env.standin.calls_to("sendMessage") == []
    assert await env.storage.outbox.due(10, datetime(2100, 1, 1, tzinfo=UTC)) == []


class Reads:
    """Counts the notifier's reads of the outbox; `await reads.first()` after one."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self._done = asyncio.Event()
        due = storage.outbox.due

        async def counting(limit: int = 100, now: datetime | None = None) -> list[OutboxMessage]:
            messages = await due(limit, now)
            self.count += 1
            self._done.set()
            return messages

        monkeypatch.setattr(storage.outbox, "due", counting)

    async def first(self) -> None:
        await asyncio.wait_for(self._done.wait(), 10)


async def test_a_handed_row_is_sent_without_reading_the_outbox(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await _user(env, 8007)
    reads = Reads(env.storage, monkeypatch)
    outcomes = Outcomes()
    notifier = Notifier(env.bot, env.storage, poll_interval=60.0, on_send=outcomes)
    await notifier.start()
    try:
        await reads.first()  # start-up looks at what earlier runs left
        for n in range(1, 4):
            fill = _fill(n)
            row = await env.storage.outbox.add(
                user_id, 8007, fill.kind.value, fill.to_payload(), f"hand-{n}"
            )
            assert row is not None
            notifier.wake(row)
        await outcomes.final(3)
        assert reads.count == 1
        await _settled(env, notifier, outcomes, 3)
    finally:
        await notifier.close()
    texts = [m.text for m in env.standin.user(8007, "u").bot_messages()]
    assert [f"매수 {n}주" in text for n, text in enumerate(texts, start=1)] == [True] * 3
    assert len(env.standin.calls_to("sendMessage")) == 3  # each once


async def test_rows_left_from_before_go_first_when_a_new_one_is_handed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await _user(env, 8008)
    for n in (1, 2):
        await _enqueue(env, user_id, 8008, _fill(n), f"old-{n}")
    reads = Reads(env.storage, monkeypatch)
    outcomes = Outcomes()
    notifier = Notifier(env.bot, env.storage, poll_interval=60.0, on_send=outcomes)
    await notifier.start()
    try:
        # Handed before the notifier has read the outbox: it must not overtake.
        fill = _fill(3)
        row = await env.storage.outbox.add(
            user_id, 8008, fill.kind.value, fill.to_payload(), "new-3"
        )
        assert row is not None
        notifier.wake(row)
        await _settled(env, notifier, outcomes, 3)
    finally:
        await notifier.close()
    assert reads.count >= 1
    texts = [m.text for m in env.standin.user(8008, "u").bot_messages()]
    assert [f"매수 {n}주" in text for n, text in enumerate(texts, start=1)] == [True] * 3
    assert len(env.standin.calls_to("sendMessage")) == 3
