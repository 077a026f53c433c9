"""Drains storage's outbox into Telegram chats.

- Every notice is a row in the outbox first, so nothing is lost across restarts: a
  row stays `pending` until Telegram accepted the message, and is marked sent once.
- Per chat, one worker sends in order, paced (about one a second with a small
  burst) under a global pace; Telegram's `retry_after` holds that chat back exactly
  as long as asked, and the wait is stored so a restart honours it too.
- Network and server errors retry with exponential backoff (stored as the row's next
  attempt); a chat that blocked the bot or no longer exists is given up on (the row
  stays, marked failed, with the error).
- `wake(message)` (called right after enqueueing, with the queued row) hands the row
  straight to its chat's worker, so it leaves without the outbox being read again;
  `wake()` alone makes the loop read the outbox now. A poll every `poll_interval`
  seconds picks up retries and what earlier runs left behind.
- Once Telegram accepted a message, the chat's next message goes while the first is
  being marked sent; the first stays in flight (never handed out again) until marked.

Delivery is at-least-once: a crash between Telegram's answer and `mark_sent` sends
that one message again after the restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)

from bot.cards import CardRenderer, Rendered, is_card
from bot.formatting import format_notice
from bot.pacing import Pacer
from bot.texts import DEFAULT_LANG, Lang, parse_lang
from storage.facade import Storage
from storage.notices import Notice, NoticeError
from storage.records import OutboxMessage
from storage.signals import Signals

log = logging.getLogger(__name__)

SendObserver = Callable[[str], None]  # outcome: "sent" | "retry_after" | "error" | "gave_up"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _always() -> bool:
    return True


class _Outcome(enum.Enum):
    SENT = enum.auto()  # Telegram accepted it; still to be marked sent
    GAVE_UP = enum.auto()  # marked failed for good
    HELD = enum.auto()  # retry later, with the rest of its chat


class Notifier:
    def __init__(
        self,
        bot: Bot,
        storage: Storage,
        *,
        chat_rate: float = 1.0,
        chat_burst: int = 3,
        global_rate: float = 25.0,
        poll_interval: float = 2.0,
        batch: int = 100,
        base_backoff: float = 2.0,
        max_backoff: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_send: SendObserver | None = None,
    ) -> None:
        self._bot = bot
        self._storage = storage
        self._chat_pacer = Pacer(chat_rate, chat_burst)
        self._global_pacer = Pacer(global_rate, max(1, int(global_rate)))
        self._poll_interval = poll_interval
        self._batch = batch
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._clock = clock
        self._now = now
        self._sleep = sleep
        self._on_send = on_send
        self._cards = CardRenderer(storage)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._queues: dict[int, deque[OutboxMessage]] = {}
        self._inflight: set[int] = set()
        # Ids finished while `dispatch_due` read the outbox: its snapshot may predate
        # their `mark_sent`, so they must not be handed out again from it.
        self._finished_during_read: set[int] = set()
        self._held_until: dict[int, float] = {}  # chat id → monotonic time
        self._languages: dict[int, Lang] = {}
        self._marking: set[asyncio.Task[None]] = set()
        # Until a read of the outbox found less than a batch, older rows may wait
        # there: new ones then go through the outbox too, so each chat keeps its order.
        self._backlog = True
        self._closing = False
        # Several instances: only the Telegram lease holder sends; it claims rows under
        # its lease (`claim_as`) and sends only while the lease is still valid.
        self._claim_as: tuple[str, int] | None = None
        self._may_send: Callable[[], bool] = _always

    def __repr__(self) -> str:
        return f"Notifier(chats={len(self._workers)}, inflight={len(self._inflight)})"

    # --- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._closing

    async def start(
        self,
        *,
        claim_as: tuple[str, int] | None = None,
        may_send: Callable[[], bool] | None = None,
    ) -> None:
        """Start sending. `claim_as` = (holder, epoch) of the Telegram lease when
        several instances share the outbox; `may_send` is asked before every send."""
        if self._task is None:
            self._closing = False
            self._backlog = True
            self._claim_as = claim_as
            self._may_send = may_send or _always
            self._task = asyncio.create_task(self._run(), name="notifier")

    async def close(self) -> None:
        """Stop polling and let workers finish the message they are sending."""
        self._closing = True
        self._wake.set()
        tasks = [t for t in (self._task, *self._workers.values()) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Sent messages being marked: let them finish, or they would be sent again.
        await asyncio.gather(*self._marking, return_exceptions=True)
        self._workers.clear()
        self._queues.clear()
        self._inflight.clear()

    def wake(self, message: OutboxMessage | None = None) -> None:
        """A notice was just enqueued. Given its new row (as `Outbox.add` returned it),
        the row goes straight to its chat's worker; otherwise the outbox is read now.
        Claiming (several instances), rows are always taken through the outbox."""
        if message is None or self._claim_as is not None or not self._hand_off(message):
            self._wake.set()

    def _hand_off(self, message: OutboxMessage) -> bool:
        """Queue a freshly stored row for its chat unless the outbox must decide."""
        if self._task is None or self._closing or self._backlog:
            return False
        if message.id in self._inflight:
            return True
        held = self._held_until.get(message.chat_id)
        if held is not None and held > self._clock():
            return True  # stays pending; the chat's hold ends with a read of the outbox
        self._queue(message)
        return True

    def _queue(self, message: OutboxMessage) -> None:
        self._inflight.add(message.id)
        self._queues.setdefault(message.chat_id, deque()).append(message)
        worker = self._workers.get(message.chat_id)
        if worker is None or worker.done():
            self._workers[message.chat_id] = asyncio.create_task(
                self._chat_worker(message.chat_id), name=f"notifier chat {message.chat_id}"
            )

    # --- languages -------------------------------------------------------------------

    def set_language(self, user_id: int, lang: Lang) -> None:
        self._languages[user_id] = lang

    async def _language(self, user_id: int | None) -> Lang:
        if user_id is None:
            return DEFAULT_LANG
        lang = self._languages.get(user_id)
        if lang is None:
            user = await self._storage.users.get(user_id)
            lang = (parse_lang(user.language) if user else None) or DEFAULT_LANG
            self._languages[user_id] = lang
        return lang

    # --- the loop --------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                await self.dispatch_due()
            except Exception:
                log.exception("notifier: reading the outbox failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_wait())

    def _next_wait(self) -> float:
        now = self._clock()
        wait = self._poll_interval
        for until in self._held_until.values():
            wait = min(wait, max(0.0, until - now) + 0.001)
        return wait

    async def dispatch_due(self) -> int:
        """Hand every due, not yet in-flight message to its chat's worker."""
        self._finished_during_read.clear()
        if self._claim_as is None:
            messages = await self._storage.outbox.due(self._batch, self._now())
        else:
            holder, epoch = self._claim_as
            messages = await self._storage.outbox.claim_due(
                holder, epoch, self._batch, self._now()
            )
        self._backlog = len(messages) >= self._batch
        finished = self._finished_during_read
        now = self._clock()
        for chat in [c for c, until in self._held_until.items() if until <= now]:
            del self._held_until[chat]
        self._chat_pacer.forget_idle(now)
        handed = 0
        for message in messages:
            if (
                message.id in self._inflight
                or message.id in finished
                or message.chat_id in self._held_until
            ):
                continue
            self._queue(message)
            handed += 1
        return handed

    async def _chat_worker(self, chat_id: int) -> None:
        queue = self._queues.get(chat_id)
        try:
            while queue:
                message = queue[0]
                outcome = await self._deliver(message)
                if outcome is _Outcome.HELD:
                    # Held back: everything queued for this chat waits for the next poll,
                    # so the chat's messages keep their order.
                    for held in queue:
                        self._release(held.id)
                    queue.clear()
                    break
                queue.popleft()
                if outcome is _Outcome.SENT:
                    self._mark_sent_later(message.id)
                else:
                    self._release(message.id)
        finally:
            if self._queues.get(chat_id) is queue and not queue:
                self._queues.pop(chat_id, None)
            if self._workers.get(chat_id) is asyncio.current_task():
                self._workers.pop(chat_id, None)

    def _mark_sent_later(self, message_id: int) -> None:
        """Record the send without holding up the chat's next message; the row stays in
        flight (not handed out again) until it is marked."""
        task = asyncio.create_task(self._mark_sent(message_id), name="notifier mark sent")
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def _mark_sent(self, message_id: int) -> None:
        try:
            await self._storage.outbox.mark_sent(message_id, self._now())
        except Exception:
            # Left in flight: not sent twice by this run (a restart may send it again).
            log.exception("notifier: could not mark message %d sent", message_id)
            return
        self._release(message_id)
        self._observe("sent")

    def _release(self, message_id: int) -> None:
        self._inflight.discard(message_id)
        self._finished_during_read.add(message_id)

    async def _pace(self, chat_id: int) -> None:
        now = self._clock()
        wait = max(self._chat_pacer.book(chat_id, now), self._global_pacer.book(None, now))
        if wait > 0:
            await self._sleep(wait)

    async def _deliver(self, message: OutboxMessage) -> _Outcome:
        """Send one message: SENT (still to be marked), GAVE_UP (marked failed) or HELD
        (to be retried later, with its chat)."""
        try:
            rendered = await self._render(message)
        except NoticeError as exc:
            await self._storage.outbox.mark_failed(message.id, f"bad payload: {exc}", None)
            self._observe("gave_up")
            return _Outcome.GAVE_UP
        while True:
            await self._pace(message.chat_id)
            if not self._may_send():
                # The Telegram lease ran out: another instance may be sending now.
                return _Outcome.HELD
            try:
                if rendered.before is not None:
                    await rendered.before(self._bot)
                if rendered.markup is None:
                    sent = await self._bot.send_message(message.chat_id, rendered.text)
                else:
                    sent = await self._bot.send_message(
                        message.chat_id, rendered.text, reply_markup=rendered.markup
                    )
            except TelegramRetryAfter as exc:
                wait = float(exc.retry_after)
                self._observe("retry_after")
                log.info("notifier: Telegram asks to wait %.0f s (chat held)", wait)
                await self._storage.outbox.mark_failed(
                    message.id, f"retry_after {wait:.0f}s", self._now() + timedelta(seconds=wait)
                )
                self._held_until[message.chat_id] = self._clock() + wait
                await self._sleep(wait)
                self._held_until.pop(message.chat_id, None)
                continue  # the same message again, still first in its chat
            except (
                TelegramForbiddenError,
                TelegramNotFound,
                TelegramBadRequest,
                TelegramUnauthorizedError,
            ) as exc:
                self._observe("gave_up")
                log.warning("notifier: giving up on message %d: %s", message.id,
                            type(exc).__name__)
                await self._storage.outbox.mark_failed(
                    message.id, f"{type(exc).__name__}: {exc.message}"[:500], None
                )
                return _Outcome.GAVE_UP
            except Exception as exc:  # network, 5xx, anything transient
                self._observe("error")
                delay = min(self._max_backoff, self._base_backoff * 2 ** min(message.attempts, 16))
                log.warning("notifier: send failed (%s), retry in %.0f s",
                            type(exc).__name__, delay)
                await self._storage.outbox.mark_failed(
                    message.id, type(exc).__name__, self._now() + timedelta(seconds=delay)
                )
                self._held_until[message.chat_id] = self._clock() + delay
                return _Outcome.HELD
            if rendered.after is not None:
                try:
                    await rendered.after(sent.message_id)
                except Exception:  # the message is out; only a follow-up edit is lost
                    log.exception("notifier: after-send step of message %d failed", message.id)
            return _Outcome.SENT

    async def _render(self, message: OutboxMessage) -> Rendered:
        lang = await self._language(message.user_id)
        if is_card(message.kind):
            return await self._cards.render(message, lang)
        return Rendered(format_notice(Notice.from_payload(message.payload), lang))

    def _observe(self, outcome: str) -> None:
        if self._on_send is not None:
            self._on_send(outcome)


OUTBOX_CHANNEL = "outbox"  # signal: a chat notice was queued (several instances)


class NoticeWake:
    """What the pipeline and the watchers call after queuing a chat notice: the local
    notifier when this instance sends the outbox (it holds the `telegram` lease), else
    a signal to the instance that does (several coalesced into one)."""

    def __init__(self, notifier: Notifier, signals: Signals | None) -> None:
        self._notifier = notifier
        self._signals = signals
        self._pending = False
        self._tasks: set[asyncio.Task[None]] = set()
        if signals is not None:
            signals.listen(OUTBOX_CHANNEL, lambda _payload: notifier.wake())

    def __call__(self, message: OutboxMessage | None = None, /) -> None:
        if self._notifier.running or self._signals is None:
            self._notifier.wake(message)
            return
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._pending = False
        assert self._signals is not None
        task = asyncio.get_running_loop().create_task(self._signals.notify(OUTBOX_CHANNEL))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The outbox row is there: the sender's poll finds it a little later.
            log.warning("could not signal the outbox (%s)", type(task.exception()).__name__)
