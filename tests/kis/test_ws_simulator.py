"""FillNoticeConnection against the KIS simulator (kis.sim) over loopback sockets.

Approval keys, tokens and orders go through raw httpx calls shaped as KIS.md
documents them, so these tests depend on the simulator and kis.ws only.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from kis.env import TR_IDS, Environment
from kis.fillnotice import FillNotice, NoticeKind
from kis.sim import KisSimulator, SimAccount, demo_account
from kis.ws import (
    SILENT_DROP_REASON,
    Backoff,
    ConnectionState,
    FillNoticeConnection,
    Status,
)

ENV = Environment.PAPER
BOUND = 5.0


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    async with KisSimulator(ping_interval_s=0.05) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=BOUND) as client:
        yield client


async def issue_approval(http: httpx.AsyncClient, sim: KisSimulator, account: SimAccount) -> str:
    response = await http.post(
        f"{sim.rest_url(ENV)}/oauth2/Approval",
        json={
            "grant_type": "client_credentials",
            "appkey": account.app_key,
            "secretkey": account.app_secret,
        },
    )
    key = response.json()["approval_key"]
    assert isinstance(key, str)
    return key


async def market_buy(
    http: httpx.AsyncClient, sim: KisSimulator, account: SimAccount, qty: int
) -> str:
    """A market buy through order-cash, as KIS.md section 6 describes it; returns ODNO."""
    rest = sim.rest_url(ENV)
    token = await http.post(
        f"{rest}/oauth2/tokenP",
        json={
            "grant_type": "client_credentials",
            "appkey": account.app_key,
            "appsecret": account.app_secret,
        },
    )
    headers = {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {token.json()['access_token']}",
        "appkey": account.app_key,
        "appsecret": account.app_secret,
        "tr_id": TR_IDS[ENV].buy,
        "custtype": "P",
    }
    body = {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": "005930",
        "ORD_DVSN": "01",
        "ORD_QTY": str(qty),
        "ORD_UNPR": "0",
        "EXCG_ID_DVSN_CD": "KRX",
        "SLL_TYPE": "",
        "CNDT_PRIC": "",
    }
    answer = (
        await http.post(
            f"{rest}/uapi/domestic-stock/v1/trading/order-cash", headers=headers, json=body
        )
    ).json()
    assert answer["rt_cd"] == "0", answer
    odno = answer["output"]["ODNO"]
    assert isinstance(odno, str)
    return odno


@dataclass
class Client:
    """A FillNoticeConnection for one simulated account, recording what it reports."""

    sim: KisSimulator
    http: httpx.AsyncClient
    account: SimAccount
    hts_id: str = ""
    notices: asyncio.Queue[FillNotice] = field(default_factory=asyncio.Queue)
    states: list[ConnectionState] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    block_after_sleeps: int | None = None
    approvals: int = 0
    invalidated: int = 0
    first_approval: str | None = None  # served once instead of a real key
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    connection: FillNoticeConnection | None = None

    async def approval_key(self) -> str:
        self.approvals += 1
        if self.first_approval is not None:
            key, self.first_approval = self.first_approval, None
            return key
        return await issue_approval(self.http, self.sim, self.account)

    def invalidate(self) -> None:
        self.invalidated += 1

    async def on_notice(self, notice: FillNotice) -> None:
        self.notices.put_nowait(notice)

    def on_state(self, state: ConnectionState) -> None:
        self.states.append(state)
        self.changed.set()

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.changed.set()
        if self.block_after_sleeps is not None and len(self.sleeps) >= self.block_after_sleeps:
            await asyncio.Event().wait()
        await asyncio.sleep(0)

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), BOUND)

    def readies(self) -> int:
        return sum(state.status is Status.READY for state in self.states)

    def start(self, **kwargs: object) -> FillNoticeConnection:
        self.connection = FillNoticeConnection(
            url=self.sim.ws_url(ENV) + "/tryitout",
            tr_id=TR_IDS[ENV].fill_notice,
            hts_id=self.hts_id or self.account.hts_id,
            approval_key=self.approval_key,
            invalidate_approval=self.invalidate,
            on_notice=self.on_notice,
            on_state=self.on_state,
            backoff=Backoff(rng=random.Random(7)),
            sleep=self.sleep,
            name="sim-test",
            **kwargs,  # type: ignore[arg-type]  # test-only overrides
        )
        self.connection.start()
        return self.connection

    async def next_notice(self) -> FillNotice:
        return await asyncio.wait_for(self.notices.get(), BOUND)


async def test_acceptance_and_fill_arrive_decoded(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    client = Client(sim, http, account)
    connection = client.start()
    assert (await connection.wait_ready(BOUND)).ready

    odno = await market_buy(http, sim, account, 3)
    accepted = await client.next_notice()
    filled = await client.next_notice()

    assert accepted.kind is NoticeKind.ACCEPTED
    assert (accepted.order_no, accepted.side, accepted.symbol) == (odno, "buy", "005930")
    assert accepted.hts_id == account.hts_id
    assert accepted.account == account.cano + account.product_code
    assert accepted.quantity == 3
    assert filled.kind is NoticeKind.FILLED
    assert (filled.order_no, filled.quantity, filled.order_qty) == (odno, 3, 3)
    assert filled.price == sim.order(odno).fills[0].price
    assert filled.name == "삼성전자"
    assert len(filled.time) == 6
    await connection.stop()
    await sim.wait_for(lambda: not sim.ws_connected(account.app_key))


async def test_wrong_hts_id_is_not_ready_with_kis_message(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    client = Client(sim, http, demo_account(), hts_id="not-my-id", block_after_sleeps=1)
    connection = client.start()
    state = await connection.wait_ready(BOUND)
    assert state.status is Status.FAILED
    assert state.reason == "fill notice not ready: invalid tr_key (OPSP8993)"
    await client.until(lambda: bool(client.sleeps))
    assert client.sleeps[0] >= 30.0  # no hammering: the user has to fix the HTS ID
    await connection.stop()


async def test_wrong_hts_id_dropped_silently_is_not_ready(http: httpx.AsyncClient) -> None:
    async with KisSimulator(wrong_hts_id="silent_drop") as sim:
        client = Client(sim, http, demo_account(), hts_id="not-my-id", block_after_sleeps=3)
        connection = client.start(silent_drops_before_failed=3)
        state = await connection.wait_ready(BOUND)
        assert state.status is Status.FAILED
        assert state.reason == SILENT_DROP_REASON
        await connection.stop()


async def test_dropped_socket_reconnects_and_resubscribes(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    client = Client(sim, http, account)
    connection = client.start()
    assert (await connection.wait_ready(BOUND)).ready

    assert sim.drop_ws(account.app_key) == 1
    await client.until(lambda: client.readies() >= 2)
    assert Status.CONNECTING in [state.status for state in client.states]

    # A drop fault right after the next subscribe answer, too.
    sim.faults.add("ws", "drop")
    assert sim.drop_ws(account.app_key) == 1
    await client.until(lambda: client.readies() >= 4)
    await sim.wait_for(lambda: sim.ws_connected(account.app_key))

    # Notices are encrypted with the newest subscription's key and iv: still decoded.
    odno = await market_buy(http, sim, account, 1)
    assert (await client.next_notice()).order_no == odno
    assert (await client.next_notice()).kind is NoticeKind.FILLED
    await connection.stop()


async def test_pingpong_is_answered(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    connection = Client(sim, http, account).start()
    assert (await connection.wait_ready(BOUND)).ready
    await sim.wait_for(lambda: sim.pongs_received(account.app_key) >= 2)
    assert connection.state.ready
    await connection.stop()


async def test_invalid_approval_key_is_replaced(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    client = Client(sim, http, demo_account(), first_approval="stale-approval-key-000000")
    connection = client.start()
    await client.until(lambda: client.readies() >= 1)
    assert client.invalidated == 1
    assert client.approvals == 2
    await connection.stop()


async def test_app_key_in_use_waits_for_the_slot(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    first = Client(sim, http, account).start()
    assert (await first.wait_ready(BOUND)).ready

    second_client = Client(sim, http, account)
    second = second_client.start()

    def in_use() -> list[ConnectionState]:
        return [s for s in second_client.states if s.reason and "OPSP8996" in s.reason]

    await second_client.until(lambda: bool(in_use()))
    assert in_use()[0].status is Status.CONNECTING
    assert in_use()[0].reason == "ALREADY IN USE appkey (OPSP8996)"

    await first.stop()
    await second_client.until(lambda: second.state.ready)
    await second.stop()
