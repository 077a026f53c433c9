"""The fill-notice WebSocket: one connection per (app key, environment), and a hub for many.

`FillNoticeConnection` owns one task that connects, subscribes to the fill-notice TR
with the user's HTS ID, answers PINGPONG, decodes notices and reconnects with jittered
backoff (KIS.md sections 9-11). Its `state` is what order guards read: only `READY`
means notices will arrive. `FillNoticeHub` keeps one connection per key.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final, Generic, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from kis.errors import KisApiError, KisError
from kis.fillnotice import (
    APPKEY_IN_USE,
    INVALID_APPROVAL_KEY,
    ControlError,
    DataFrame,
    FillNotice,
    FrameError,
    NoticeCipher,
    PingPong,
    RecordDecoder,
    Subscribed,
    Unsubscribed,
    decode_notices,
    notice_from_fields,
    parse_frame,
)
from kis.secret import Secret

logger = logging.getLogger(__name__)

NOT_READY: Final = "fill notice not ready"
_CLOSE_GRACE: Final = 5.0
SILENT_DROP_REASON: Final = (
    f"{NOT_READY}: KIS closed the connection after subscribing (check the HTS ID)"
)

# The WebSocket library logs every frame at DEBUG: the subscription answer carries the
# AES key and iv, and our subscribe frame the approval key. Its DEBUG records for these
# connections are dropped whatever the root level is.
_PROTOCOL_LOG: Final = logging.getLogger("kis.ws.protocol")
_PROTOCOL_LOG.addFilter(lambda record: record.levelno >= logging.INFO)

# A tiny, rare message stream: keep websockets' buffers small and skip compression,
# whose zlib state alone costs hundreds of KiB per connection.
WS_OPTIONS: Final[dict[str, object]] = {
    "logger": _PROTOCOL_LOG,
    "compression": None,
    "max_size": 2**17,
    "max_queue": 4,
    "write_limit": 2**12,
    "open_timeout": 10.0,
    "close_timeout": 5.0,
    "proxy": None,
}

ApprovalKey = Callable[[], Awaitable[str | Secret]]
Connect = Callable[..., Awaitable[ClientConnection]]
Sleep = Callable[[float], Awaitable[None]]
NoticeHandler = Callable[[FillNotice], Awaitable[None]]
StateHandler = Callable[["ConnectionState"], None]
Invalidate = Callable[[], Awaitable[None] | None]


class Status(enum.StrEnum):
    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ConnectionState:
    status: Status
    reason: str | None
    since: datetime

    @property
    def ready(self) -> bool:
        return self.status is Status.READY


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with jitter: each delay is drawn from [ceiling/2, ceiling]."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * self.factor ** min(max(attempt, 0), 64))
        return ceiling / 2 + self.rng.uniform(0.0, ceiling / 2)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One registration on the session: a fill-notice TR with its tr_key (the HTS ID)
    and the decoder of that TR's record layout."""

    tr_id: str
    tr_key: str
    decode: RecordDecoder = field(default=notice_from_fields, compare=False)


def subscription_message(approval_key: str, tr_id: str, tr_key: str, *, subscribe: bool) -> str:
    """The registration text frame of KIS.md section 10 (`tr_type` 1 = on, 2 = off)."""
    return json.dumps(
        {
            "header": {
                "approval_key": approval_key,
                "custtype": "P",
                "tr_type": "1" if subscribe else "2",
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


class _End(enum.Enum):
    """How one connection attempt ended."""

    STOPPED = enum.auto()
    LOST = enum.auto()  # dropped after a subscribe answer
    SILENT_DROP = enum.auto()  # dropped before any answer to the subscription
    REFUSED = enum.auto()  # KIS refused the subscription for good (tr_key, tr_id, ...)
    APPROVAL_INVALID = enum.auto()
    FAILURE = enum.auto()  # transient: network, approval key fetch, in use, timeouts


@dataclass(frozen=True, slots=True)
class _Outcome:
    end: _End
    reason: str
    ready_for: float | None = None  # seconds spent READY in this attempt


class FillNoticeConnection:
    """One fill-notice subscription kept alive by one task."""

    def __init__(
        self,
        *,
        url: str,
        tr_id: str = "",
        hts_id: str = "",
        approval_key: ApprovalKey,
        subscriptions: Sequence[Subscription] = (),
        on_notice: NoticeHandler,
        invalidate_approval: Invalidate | None = None,
        on_state: StateHandler | None = None,
        backoff: Backoff | None = None,
        refused_backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        connect: Connect = ws_connect,
        clock: Callable[[], float] = time.monotonic,
        name: str = "fill-notice",
        ping_interval: float | None = 30.0,
        ping_timeout: float | None = 30.0,
        subscribe_timeout: float = 15.0,
        stable_after: float = 60.0,
        silent_drops_before_failed: int = 3,
        failures_before_failed: int = 5,
    ) -> None:
        self._url = url
        subs = tuple(subscriptions) or (Subscription(tr_id, hts_id),)
        if any(not (sub.tr_id and sub.tr_key) for sub in subs):
            raise ValueError("every subscription needs a TR ID and a tr_key (the HTS ID)")
        self._subscriptions = subs
        self._decoders = {sub.tr_id: sub.decode for sub in subs}
        self._approval_key = approval_key
        self._invalidate_approval = invalidate_approval
        self._on_notice = on_notice
        self._on_state = on_state
        self._backoff = backoff or Backoff()
        # Refusals that need the user to act (wrong HTS ID): retry, but rarely.
        self._refused_backoff = refused_backoff or Backoff(base=60.0, cap=900.0)
        self._sleep = sleep
        self._connect = connect
        self._clock = clock
        self._name = name
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._subscribe_timeout = subscribe_timeout
        self._stable_after = stable_after
        self._silent_drops_before_failed = silent_drops_before_failed
        self._failures_before_failed = failures_before_failed

        self._state = ConnectionState(Status.CONNECTING, None, datetime.now(UTC))
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._session_key: str | None = None
        self._subscribed = False
        self._stopping = False

    def __repr__(self) -> str:
        return f"<FillNoticeConnection {self._name} {self._state.status}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subscriptions

    def same_target(self, *, url: str, subscriptions: Sequence[Subscription]) -> bool:
        return (self._url, self._subscriptions) == (url, tuple(subscriptions))

    def start(self) -> None:
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"fill-notice {self._name}"
        )

    async def wait_ready(self, timeout: float) -> ConnectionState:  # noqa: ASYNC109 - bounded by design
        """Wait until READY, FAILED or STOPPED (or the timeout); return the state then."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), timeout)
        return self._state

    async def stop(self) -> None:
        """Unsubscribe if subscribed, close the socket cleanly and end the task."""
        self._stopping = True
        task = self._task
        if task is not None and not task.done():
            ws = self._ws
            if ws is not None:
                await self._goodbye(ws)
                # The receive loop sees the close and ends by itself.
                await asyncio.wait({task}, timeout=_CLOSE_GRACE)
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._set_state(Status.STOPPED, None)

    async def _goodbye(self, ws: ClientConnection) -> None:
        key = self._session_key
        if self._subscribed and key is not None:
            with contextlib.suppress(ConnectionClosed, TimeoutError, OSError):
                async with asyncio.timeout(_CLOSE_GRACE):
                    for sub in self._subscriptions:
                        await ws.send(
                            subscription_message(key, sub.tr_id, sub.tr_key, subscribe=False)
                        )
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()

    def _stop_requested(self) -> bool:
        # A method, so that type narrowing does not outlive an await.
        return self._stopping

    # --- state -----------------------------------------------------------------------

    def _set_state(self, status: Status, reason: str | None) -> None:
        if (status, reason) == (self._state.status, self._state.reason):
            return
        self._state = ConnectionState(status, reason, datetime.now(UTC))
        if status is Status.CONNECTING:
            self._settled.clear()
        else:
            self._settled.set()
        if status is Status.READY:
            logger.info("%s: fill notice ready", self._name)
        elif reason:
            logger.warning("%s: %s: %s", self._name, status, reason)
        if self._on_state is not None:
            try:
                self._on_state(self._state)
            except Exception:
                logger.exception("%s: state callback failed", self._name)

    def _not_ready(self, reason: str) -> None:
        """A transient problem: CONNECTING, unless a FAILED verdict already stands."""
        if self._state.status is not Status.FAILED:
            self._set_state(Status.CONNECTING, reason)

    # --- the loop --------------------------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        refused_attempt = 0
        failures = 0
        silent_drops = 0
        while not self._stopping:
            try:
                outcome = await self._attempt()
            except Exception as exc:  # a bug must not end the subscription for good
                logger.exception("%s: unexpected error in the fill-notice loop", self._name)
                outcome = _Outcome(_End.FAILURE, f"internal error ({type(exc).__name__})")
            if self._stopping or outcome.end is _End.STOPPED:
                return
            if outcome.ready_for is not None:
                failures = silent_drops = refused_attempt = 0
                if outcome.ready_for >= self._stable_after:
                    attempt = 0
            delay_backoff = self._backoff
            if outcome.end is _End.LOST:
                self._not_ready(outcome.reason)
            elif outcome.end is _End.REFUSED:
                self._set_state(Status.FAILED, outcome.reason)
            elif outcome.end is _End.SILENT_DROP:
                silent_drops += 1
                if silent_drops >= self._silent_drops_before_failed:
                    self._set_state(Status.FAILED, SILENT_DROP_REASON)
                else:
                    self._not_ready(outcome.reason)
            else:
                if outcome.end is _End.APPROVAL_INVALID:
                    await self._invalidate()
                failures += 1
                if failures >= self._failures_before_failed:
                    self._set_state(Status.FAILED, f"{NOT_READY}: {outcome.reason}")
                else:
                    self._not_ready(outcome.reason)
            if self._state.status is Status.FAILED and outcome.end is not _End.LOST:
                delay_backoff = self._refused_backoff
                delay = delay_backoff.delay(refused_attempt)
                refused_attempt += 1
            else:
                delay = delay_backoff.delay(attempt)
                attempt += 1
            logger.debug("%s: retrying in %.1f s", self._name, delay)
            await self._sleep(delay)

    async def _invalidate(self) -> None:
        if self._invalidate_approval is None:
            return
        try:
            result = self._invalidate_approval()
            if result is not None:
                await result
        except Exception:
            logger.exception("%s: invalidating the approval key failed", self._name)

    async def _attempt(self) -> _Outcome:
        try:
            raw_key = await self._approval_key()
        except KisApiError as exc:
            return _Outcome(_End.FAILURE, f"approval key refused: {exc.msg1} ({exc.msg_cd})")
        except KisError as exc:  # its messages carry KIS codes and texts, never secrets
            return _Outcome(_End.FAILURE, f"approval key unavailable: {str(exc)[:200]}")
        except Exception as exc:
            return _Outcome(_End.FAILURE, f"approval key unavailable ({type(exc).__name__})")
        key = raw_key.reveal() if isinstance(raw_key, Secret) else raw_key
        if self._stopping:
            return _Outcome(_End.STOPPED, "stopped")
        try:
            ws = await self._connect(
                self._url,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                **WS_OPTIONS,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            return _Outcome(_End.FAILURE, f"cannot connect to KIS ({type(exc).__name__})")
        self._ws = ws
        self._session_key = key
        try:
            if self._stop_requested():
                return _Outcome(_End.STOPPED, "stopped")
            return await self._session(ws, key)
        finally:
            self._ws = None
            self._session_key = None
            self._subscribed = False
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close()

    async def _session(self, ws: ClientConnection, key: str) -> _Outcome:
        # One session carries every TR; each subscription answer brings its own key/iv.
        ciphers: dict[str, NoticeCipher] = {}
        waiting = [sub.tr_id for sub in self._subscriptions]
        ready_at: float | None = None
        # Identical records within one subscription are distinct events (equal lots);
        # the same record in another subscription is a redelivery.
        seen: Counter[FillNotice] = Counter()
        try:
            for sub in self._subscriptions:
                await ws.send(subscription_message(key, sub.tr_id, sub.tr_key, subscribe=True))
            while True:
                if ready_at is None:
                    try:
                        async with asyncio.timeout(self._subscribe_timeout):
                            message = await ws.recv()
                    except TimeoutError:
                        return _Outcome(_End.FAILURE, "KIS did not answer the subscription")
                else:
                    message = await ws.recv()
                if isinstance(message, bytes):
                    logger.warning("%s: ignoring a binary frame", self._name)
                    continue
                try:
                    frame = parse_frame(message)
                except FrameError as exc:
                    logger.warning("%s: ignoring a frame: %s", self._name, exc)
                    continue
                if isinstance(frame, PingPong):
                    await ws.send(frame.text)
                elif isinstance(frame, DataFrame):
                    await self._deliver(frame, ciphers.get(frame.tr_id), seen)
                elif isinstance(frame, Subscribed):
                    tr_id = frame.tr_id if frame.tr_id in self._decoders else (
                        waiting[0] if waiting else ""
                    )
                    if frame.key and frame.iv:
                        try:
                            ciphers[tr_id] = NoticeCipher(frame.key, frame.iv)
                        except FrameError as exc:
                            logger.warning("%s: %s", self._name, exc)
                    elif tr_id not in ciphers:
                        logger.warning("%s: subscribed without a key and iv", self._name)
                    if tr_id in waiting:
                        waiting.remove(tr_id)
                    self._subscribed = True
                    if waiting:
                        continue  # READY only once every TR is registered
                    if ready_at is None:
                        ready_at = self._clock()
                    self._set_state(Status.READY, None)
                elif isinstance(frame, Unsubscribed):
                    self._subscribed = False
                    if not self._stopping:
                        logger.warning("%s: unsubscribed by KIS: %s", self._name, frame.msg1)
                        return self._lost(ready_at, "unsubscribed by KIS")
                elif isinstance(frame, ControlError):
                    outcome = self._refusal(frame)
                    if ready_at is not None:
                        return _Outcome(outcome.end, outcome.reason, self._clock() - ready_at)
                    return outcome
        except ConnectionClosed as exc:
            if self._stopping:
                return _Outcome(_End.STOPPED, "stopped")
            how = "without a close frame" if exc.rcvd is None else f"with code {exc.rcvd.code}"
            if ready_at is None:
                return _Outcome(_End.SILENT_DROP, f"KIS closed the connection {how}")
            return self._lost(ready_at, f"connection lost {how}")

    def _lost(self, ready_at: float | None, reason: str) -> _Outcome:
        ready_for = None if ready_at is None else self._clock() - ready_at
        return _Outcome(_End.LOST, f"reconnecting: {reason}", ready_for)

    @staticmethod
    def _refusal(frame: ControlError) -> _Outcome:
        reason = f"{frame.msg1} ({frame.msg_cd})" if frame.msg1 else frame.msg_cd
        if frame.msg_cd == INVALID_APPROVAL_KEY:
            return _Outcome(_End.APPROVAL_INVALID, reason)
        if frame.msg_cd == APPKEY_IN_USE or frame.msg_cd.startswith("OPSQ"):
            return _Outcome(_End.FAILURE, reason)
        # invalid tr_key (wrong HTS ID), invalid tr_id, max subscribe, invalid json, or
        # anything unknown: retrying soon would not help.
        return _Outcome(_End.REFUSED, f"{NOT_READY}: {reason}")

    async def _deliver(
        self, frame: DataFrame, cipher: NoticeCipher | None, seen: Counter[FillNotice]
    ) -> None:
        decode = self._decoders.get(frame.tr_id)
        if decode is None:
            logger.debug("%s: ignoring a frame for TR %s", self._name, frame.tr_id)
            return
        try:
            notices = decode_notices(frame, cipher, decode, datetime.now(UTC))
        except FrameError as exc:
            logger.error("%s: undecodable fill notice: %s", self._name, exc)
            return
        for notice in notices:
            seen[notice] += 1
            if seen[notice] > 1:
                notice = replace(notice, occurrence=seen[notice])
            try:
                await self._on_notice(notice)
            except Exception:
                logger.exception("%s: fill-notice handler failed", self._name)


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class HubOptions:
    """Settings shared by every connection of a hub."""

    backoff: Backoff = field(default_factory=Backoff)
    refused_backoff: Backoff = field(default_factory=lambda: Backoff(base=60.0, cap=900.0))
    sleep: Sleep = asyncio.sleep
    connect: Connect = ws_connect
    ping_interval: float | None = 30.0
    ping_timeout: float | None = 30.0


class FillNoticeHub(Generic[K]):
    """One fill-notice connection per key, e.g. (app key id, environment)."""

    def __init__(self, options: HubOptions | None = None) -> None:
        self._options = options or HubOptions()
        self._connections: dict[K, FillNoticeConnection] = {}

    def __len__(self) -> int:
        return len(self._connections)

    def keys(self) -> list[K]:
        return list(self._connections)

    def get(self, key: K) -> FillNoticeConnection | None:
        return self._connections.get(key)

    def state(self, key: K) -> ConnectionState | None:
        connection = self._connections.get(key)
        return None if connection is None else connection.state

    async def ensure(
        self,
        key: K,
        *,
        url: str,
        approval_key: ApprovalKey,
        on_notice: NoticeHandler,
        tr_id: str = "",
        hts_id: str = "",
        subscriptions: Sequence[Subscription] = (),
        invalidate_approval: Invalidate | None = None,
        on_state: StateHandler | None = None,
        name: str | None = None,
    ) -> FillNoticeConnection:
        """Start the key's connection, or replace it when url, TRs or HTS ID changed."""
        subs = tuple(subscriptions) or (Subscription(tr_id, hts_id),)
        current = self._connections.get(key)
        if current is not None:
            if current.running and current.same_target(url=url, subscriptions=subs):
                return current
            await self.stop(key)
        options = self._options
        connection = FillNoticeConnection(
            url=url,
            subscriptions=subs,
            approval_key=approval_key,
            on_notice=on_notice,
            invalidate_approval=invalidate_approval,
            on_state=on_state,
            backoff=options.backoff,
            refused_backoff=options.refused_backoff,
            sleep=options.sleep,
            connect=options.connect,
            name=name or f"fill-notice {len(self._connections) + 1}",
            ping_interval=options.ping_interval,
            ping_timeout=options.ping_timeout,
        )
        self._connections[key] = connection
        connection.start()
        return connection

    async def stop(self, key: K) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            await connection.stop()

    async def close(self) -> None:
        connections = list(self._connections.values())
        self._connections.clear()
        await asyncio.gather(*(c.stop() for c in connections), return_exceptions=True)
