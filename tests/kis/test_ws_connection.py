"""FillNoticeConnection and FillNoticeHub against a tiny KIS stand-in on a loopback socket."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.server import Server, ServerConnection, serve

from kis.errors import KisAuthError
from kis.fillnotice import FillNotice, NoticeKind
from kis.secret import Secret
from kis.ws import (
    SILENT_DROP_REASON,
    Backoff,
    ConnectionState,
    FillNoticeConnection,
    FillNoticeHub,
    HubOptions,
    Status,
)

TR_ID = "H0STCNI0"
HTS_ID = "moauser1"
APPROVAL = "approval-key-0123456789abcdef-secret"
BOUND = 5.0  # seconds: every wait in these tests is bounded by this

# The 26 fields of a fill notice (KIS.md section 11): a buy of 10 × 005930 at 70,100.
FILL = [
    HTS_ID, "5012345601", "0000012345", "", "02", "0", "01", "0", "005930", "10", "70100",
    "093012", "0", "2", "2", "06010", "10", "홍길동", "", "1", "Y", "", "10", "", "삼성전자",
    "0",
]  # fmt: skip


def encrypt(text: str, key: str, iv: str) -> str:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def control(msg_cd: str, msg1: str, *, rt_cd: str = "0", output: dict[str, str] | None = None,
            tr_key: str = HTS_ID) -> str:  # fmt: skip
    body: dict[str, object] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if output is not None:
        body["output"] = output
    return json.dumps({"header": {"tr_id": TR_ID, "tr_key": tr_key, "encrypt": "N"}, "body": body})


@dataclass
class FakeKis:
    """Answers each connection according to `modes[i]` (default: `default_mode`).

    ok: subscribe success with a key/iv unique to the connection; refuse: invalid
    tr_key; drop: abort the TCP connection without a close frame; approval: OPSP0011;
    mute: no answer at all.
    """

    modes: list[str] = field(default_factory=list)
    default_mode: str = "ok"
    connections: list[ServerConnection] = field(default_factory=list)
    messages: asyncio.Queue[tuple[int, str]] = field(default_factory=asyncio.Queue)
    closed: asyncio.Queue[tuple[int, int | None]] = field(default_factory=asyncio.Queue)
    keys: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    async def handler(self, ws: ServerConnection) -> None:
        index = len(self.connections)
        self.connections.append(ws)
        key, iv = f"k{index:031d}", f"v{index:015d}"
        self.keys.append((key, iv))
        mode = self.modes[index] if index < len(self.modes) else self.default_mode
        first = await ws.recv()
        assert isinstance(first, str)
        self.messages.put_nowait((index, first))
        if mode == "drop":
            assert ws.transport is not None
            ws.transport.abort()
            return
        if mode == "ok":
            await ws.send(control("OPSP0000", "SUBSCRIBE SUCCESS", output={"key": key, "iv": iv}))
        elif mode == "refuse":
            await ws.send(control("OPSP8993", "invalid tr_key", rt_cd="1"))
        elif mode == "approval":
            await ws.send(control("OPSP0011", "invalid approval : NOT FOUND", rt_cd="1"))
        async for message in ws:
            assert isinstance(message, str)
            self.messages.put_nowait((index, message))
        self.closed.put_nowait((index, ws.close_code))

    async def next_message(self) -> tuple[int, dict[str, object] | str]:
        index, text = await asyncio.wait_for(self.messages.get(), BOUND)
        try:
            return index, json.loads(text)
        except ValueError:
            return index, text

    async def send_fill(self, index: int, fields: list[str]) -> None:
        key, iv = self.keys[index]
        await self.connections[index].send(f"1|{TR_ID}|001|{encrypt('^'.join(fields), key, iv)}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeKis]:
    kis = FakeKis()
    server: Server = await serve(kis.handler, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    kis.url = f"ws://127.0.0.1:{port}/tryitout"
    try:
        yield kis
    finally:
        server.close()
        await server.wait_closed()


@dataclass
class Harness:
    """Collects what the connection reports; sleeps on a fake clock."""

    notices: asyncio.Queue[FillNotice] = field(default_factory=asyncio.Queue)
    states: list[ConnectionState] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    keys_issued: int = 0
    invalidated: int = 0
    block_after_sleeps: int | None = None  # block forever from this sleep on
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_state(self, state: ConnectionState) -> None:
        self.states.append(state)
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded) until `condition` holds; re-checked at every state or sleep."""

        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), BOUND)

    def readies(self) -> int:
        return sum(s.status is Status.READY for s in self.states)

    def ready_count(self, count: int) -> Callable[[], bool]:
        return lambda: self.readies() >= count

    async def approval_key(self) -> Secret:
        self.keys_issued += 1
        return Secret(f"{APPROVAL}-{self.keys_issued}")

    def invalidate(self) -> None:
        self.invalidated += 1

    async def on_notice(self, notice: FillNotice) -> None:
        self.notices.put_nowait(notice)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.changed.set()
        if self.block_after_sleeps is not None and len(self.sleeps) >= self.block_after_sleeps:
            await asyncio.Event().wait()
        await asyncio.sleep(0)

    def connection(self, url: str, **kwargs: object) -> FillNoticeConnection:
        options: dict[str, object] = {
            "url": url,
            "tr_id": TR_ID,
            "hts_id": HTS_ID,
            "approval_key": self.approval_key,
            "invalidate_approval": self.invalidate,
            "on_notice": self.on_notice,
            "on_state": self.on_state,
            "backoff": Backoff(rng=random.Random(1)),
            "sleep": self.sleep,
            "name": "test",
        }
        options.update(kwargs)
        return FillNoticeConnection(**options)  # type: ignore[arg-type]  # test wiring


async def test_subscribes_exactly_as_kis_documents(fake: FakeKis) -> None:
    harness = Harness()
    connection = harness.connection(fake.url)
    connection.start()
    index, message = await fake.next_message()
    assert index == 0
    assert message == {
        "header": {
            "approval_key": f"{APPROVAL}-1",
            "custtype": "P",
            "tr_type": "1",
            "content-type": "utf-8",
        },
        "body": {"input": {"tr_id": TR_ID, "tr_key": HTS_ID}},
    }
    state = await connection.wait_ready(BOUND)
    assert state.status is Status.READY
    assert state.reason is None
    await connection.stop()


async def test_encrypted_notice_reaches_the_handler(fake: FakeKis) -> None:
    harness = Harness()
    connection = harness.connection(fake.url)
    connection.start()
    assert (await connection.wait_ready(BOUND)).ready
    await fake.send_fill(0, FILL)
    notice = await asyncio.wait_for(harness.notices.get(), BOUND)
    assert notice.kind is NoticeKind.FILLED
    assert (notice.order_no, notice.quantity, notice.price, notice.name) == (
        "0000012345",
        10,
        70100,
        "삼성전자",
    )
    await connection.stop()


async def test_pingpong_is_echoed_identically(fake: FakeKis) -> None:
    harness = Harness()
    connection = harness.connection(fake.url)
    connection.start()
    assert (await connection.wait_ready(BOUND)).ready
    await fake.next_message()  # the subscription
    ping = '{"header":{"tr_id":"PINGPONG","datetime":"20250105093000"}}'
    await fake.connections[0].send(ping)
    assert await asyncio.wait_for(fake.messages.get(), BOUND) == (0, ping)
    await connection.stop()


async def test_handler_errors_do_not_stop_the_stream(fake: FakeKis) -> None:
    harness = Harness()
    calls = 0

    async def flaky(notice: FillNotice) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("handler bug")
        await harness.on_notice(notice)

    connection = harness.connection(fake.url, on_notice=flaky)
    connection.start()
    assert (await connection.wait_ready(BOUND)).ready
    await fake.send_fill(0, FILL)
    await fake.connections[0].send("garbage that is no frame")
    second = list(FILL)
    second[2] = "0000099999"
    await fake.send_fill(0, second)
    notice = await asyncio.wait_for(harness.notices.get(), BOUND)
    assert notice.order_no == "0000099999"
    assert connection.state.ready
    await connection.stop()


async def test_drop_without_close_frame_reconnects_with_new_key_and_iv(fake: FakeKis) -> None:
    harness = Harness()
    connection = harness.connection(fake.url)
    connection.start()
    assert (await connection.wait_ready(BOUND)).ready
    await fake.next_message()
    first = fake.connections[0]
    assert first.transport is not None
    first.transport.abort()  # no close frame

    index, message = await fake.next_message()
    assert index == 1
    assert isinstance(message, dict)
    assert message["body"] == {"input": {"tr_id": TR_ID, "tr_key": HTS_ID}}
    await harness.until(lambda: harness.readies() >= 2)
    assert [s.status for s in harness.states] == [
        Status.READY,
        Status.CONNECTING,
        Status.READY,
    ]
    assert harness.states[1].reason is not None
    assert "without a close frame" in harness.states[1].reason
    assert len(harness.sleeps) == 1  # one backoff delay, on the fake clock
    assert fake.keys[0] != fake.keys[1]
    # The new subscription's key decrypts; the old one would not.
    await fake.send_fill(1, FILL)
    notice = await asyncio.wait_for(harness.notices.get(), BOUND)
    assert notice.quantity == 10
    await connection.stop()


async def test_invalid_hts_id_fails_with_kis_message_and_backs_off_slowly(fake: FakeKis) -> None:
    fake.default_mode = "refuse"
    harness = Harness(block_after_sleeps=2)
    connection = harness.connection(
        fake.url, refused_backoff=Backoff(base=60.0, cap=900.0, rng=random.Random(2))
    )
    connection.start()
    state = await connection.wait_ready(BOUND)
    assert state.status is Status.FAILED
    assert state.reason == "fill notice not ready: invalid tr_key (OPSP8993)"
    # It keeps retrying, but slowly (the user may fix the HTS ID).
    await fake.next_message()
    await fake.next_message()
    await harness.until(lambda: len(harness.sleeps) >= 2)
    assert harness.sleeps[0] >= 30.0
    assert harness.sleeps[1] >= 60.0
    assert connection.state.status is Status.FAILED
    await connection.stop()
    assert connection.state == harness.states[-1]
    assert harness.states[-1].status is Status.STOPPED


async def test_silent_drops_after_subscribing_mean_wrong_hts_id(fake: FakeKis) -> None:
    fake.default_mode = "drop"
    harness = Harness(block_after_sleeps=3)
    connection = harness.connection(fake.url, silent_drops_before_failed=3)
    connection.start()
    state = await connection.wait_ready(BOUND)
    assert state.status is Status.FAILED
    assert state.reason == SILENT_DROP_REASON
    assert len(fake.connections) == 3
    await connection.stop()


async def test_invalid_approval_key_is_invalidated_and_reissued(fake: FakeKis) -> None:
    fake.modes = ["approval", "ok"]
    harness = Harness()
    connection = harness.connection(fake.url)
    connection.start()
    await harness.until(lambda: connection.state.ready)
    assert harness.invalidated == 1
    _, first = await fake.next_message()
    _, second = await fake.next_message()
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["header"] != second["header"]  # a fresh approval key was fetched
    assert harness.keys_issued == 2
    await connection.stop()


async def test_stop_unsubscribes_and_closes_cleanly(fake: FakeKis) -> None:
    harness = Harness()
    connection = harness.connection(fake.url)
    connection.start()
    assert (await connection.wait_ready(BOUND)).ready
    await fake.next_message()
    await connection.stop()
    _, goodbye = await fake.next_message()
    assert isinstance(goodbye, dict)
    assert goodbye["header"] == {
        "approval_key": f"{APPROVAL}-1",
        "custtype": "P",
        "tr_type": "2",
        "content-type": "utf-8",
    }
    assert await asyncio.wait_for(fake.closed.get(), BOUND) == (0, 1000)
    assert connection.state.status is Status.STOPPED
    assert not connection.running


async def test_unanswered_subscription_times_out_and_retries(fake: FakeKis) -> None:
    fake.modes = ["mute", "ok"]
    harness = Harness()
    connection = harness.connection(fake.url, subscribe_timeout=0.1)
    connection.start()
    await harness.until(lambda: connection.state.ready)
    assert harness.states[0].status is Status.CONNECTING
    assert harness.states[0].reason == "KIS did not answer the subscription"
    assert len(fake.connections) == 2
    await connection.stop()


async def test_stop_while_waiting_to_retry(fake: FakeKis) -> None:
    fake.default_mode = "refuse"
    harness = Harness(block_after_sleeps=1)
    connection = harness.connection(fake.url)
    connection.start()
    assert (await connection.wait_ready(BOUND)).status is Status.FAILED
    await harness.until(lambda: bool(harness.sleeps))
    await asyncio.wait_for(connection.stop(), BOUND)
    assert connection.state.status is Status.STOPPED


async def test_unreachable_host_retries_then_fails() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    harness = Harness(block_after_sleeps=3)
    connection = harness.connection(f"ws://127.0.0.1:{port}/tryitout", failures_before_failed=3)
    connection.start()
    state = await connection.wait_ready(BOUND)
    assert state.status is Status.FAILED
    assert state.reason is not None
    assert state.reason.startswith("fill notice not ready: cannot connect to KIS")
    await connection.stop()


async def test_backoff_resets_after_a_stable_ready_period(fake: FakeKis) -> None:
    now = 0.0
    harness = Harness()
    connection = harness.connection(
        fake.url, clock=lambda: now, backoff=Backoff(base=1.0, factor=2.0, cap=60.0)
    )

    connection.start()
    for index in range(4):
        await harness.until(harness.ready_count(index + 1))
        await fake.next_message()
        if index == 3:
            now += 3600.0  # a long healthy session before this drop
        transport = fake.connections[index].transport
        assert transport is not None
        transport.abort()
    await harness.until(lambda: harness.readies() >= 5)
    # Short-lived sessions: the delay ceiling grows 1, 2, 4; then it starts over.
    assert 0.5 <= harness.sleeps[0] <= 1.0
    assert 1.0 <= harness.sleeps[1] <= 2.0
    assert 2.0 <= harness.sleeps[2] <= 4.0
    assert 0.5 <= harness.sleeps[3] <= 1.0
    await connection.stop()


async def test_approval_key_never_reaches_the_logs(
    fake: FakeKis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.modes = ["approval", "refuse"]
    harness = Harness(block_after_sleeps=2)
    connection = harness.connection(fake.url)
    connection.start()
    await harness.until(lambda: connection.state.status is Status.FAILED)
    await connection.stop()
    assert APPROVAL not in caplog.text
    assert APPROVAL not in repr(connection)
    assert "invalid tr_key (OPSP8993)" in caplog.text


async def test_approval_key_errors_surface_without_their_details(fake: FakeKis) -> None:
    harness = Harness(block_after_sleeps=2)
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError(f"boom {APPROVAL}")
        raise KisAuthError(
            rt_cd="1", msg_cd="EGW00105", msg1="유효하지 않은 AppSecret", tr_id=None,
            http_status=403,
        )  # fmt: skip

    connection = harness.connection(fake.url, approval_key=failing, failures_before_failed=2)
    connection.start()
    state = await connection.wait_ready(BOUND)
    assert state.status is Status.FAILED
    assert state.reason == (
        "fill notice not ready: approval key refused: 유효하지 않은 AppSecret (EGW00105)"
    )
    assert harness.states[0].reason == "approval key unavailable (RuntimeError)"
    assert fake.connections == []  # no socket opened without an approval key
    await connection.stop()


def test_backoff_is_jittered_and_capped() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=10.0, rng=random.Random(3))
    delays = [backoff.delay(n) for n in range(8)]
    assert all(0.5 * min(10.0, 2.0**n) <= d <= min(10.0, 2.0**n) for n, d in enumerate(delays))
    assert len(set(delays)) == len(delays)
    assert max(delays) <= 10.0


async def test_hub_keeps_one_connection_per_key_and_replaces_on_change(fake: FakeKis) -> None:
    harness = Harness()
    hub: FillNoticeHub[tuple[str, str]] = FillNoticeHub(HubOptions(sleep=harness.sleep))
    common = {
        "url": fake.url,
        "tr_id": TR_ID,
        "approval_key": harness.approval_key,
        "on_notice": harness.on_notice,
    }
    first = await hub.ensure(("app-a", "real"), hts_id=HTS_ID, **common)  # type: ignore[arg-type]
    again = await hub.ensure(("app-a", "real"), hts_id=HTS_ID, **common)  # type: ignore[arg-type]
    assert again is first
    other = await hub.ensure(("app-b", "real"), hts_id="other1", **common)  # type: ignore[arg-type]
    assert len(hub) == 2
    assert (await first.wait_ready(BOUND)).ready
    assert (await other.wait_ready(BOUND)).ready

    replaced = await hub.ensure(("app-a", "real"), hts_id="newid", **common)  # type: ignore[arg-type]
    assert replaced is not first
    assert first.state.status is Status.STOPPED
    assert (await replaced.wait_ready(BOUND)).ready
    state = hub.state(("app-a", "real"))
    assert state is not None and state.ready

    await hub.stop(("app-b", "real"))
    assert other.state.status is Status.STOPPED
    assert hub.state(("app-b", "real")) is None
    await hub.close()
    assert replaced.state.status is Status.STOPPED
    assert len(hub) == 0
