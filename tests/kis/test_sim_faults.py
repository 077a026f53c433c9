"""Switchable faults of the simulator, observed over real loopback sockets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from kis.env import Environment
from kis.sim import KisSimulator, OrderStatus, SimAccount, demo_account

PAPER = Environment.PAPER
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
PRICE_PARAMS = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(rate_limits={PAPER: 1000})
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def token(sim: KisSimulator, http: httpx.AsyncClient) -> str:
    answer = await request_token(sim, http)
    return str(answer.json()["access_token"])


async def request_token(sim: KisSimulator, http: httpx.AsyncClient) -> httpx.Response:
    account = demo_account()
    return await http.post(
        sim.rest_url(PAPER) + "/oauth2/tokenP",
        json={
            "grant_type": "client_credentials",
            "appkey": account.app_key,
            "appsecret": account.app_secret,
        },
    )


def headers(token: str, tr_id: str) -> dict[str, str]:
    account = demo_account()
    return {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {token}",
        "appkey": account.app_key,
        "appsecret": account.app_secret,
        "tr_id": tr_id,
        "custtype": "P",
    }


def buy(qty: int = 1) -> dict[str, str]:
    return {
        "CANO": "12345678",
        "ACNT_PRDT_CD": "01",
        "PDNO": "005930",
        "ORD_DVSN": "01",
        "ORD_QTY": str(qty),
        "ORD_UNPR": "0",
        "EXCG_ID_DVSN_CD": "KRX",
        "SLL_TYPE": "",
        "CNDT_PRIC": "",
    }


async def get_price(sim: KisSimulator, http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.get(
        sim.rest_url(PAPER) + PRICE, headers=headers(token, "FHKST01010100"), params=PRICE_PARAMS
    )


async def test_code_fault_fires_count_times_then_clears(
    sim: KisSimulator, http: httpx.AsyncClient, token: str
) -> None:
    sim.faults.add("price", "EGW00201", count=2)
    first, second, third = [await get_price(sim, http, token) for _ in range(3)]
    assert first.status_code == 500
    assert first.json() == {
        "rt_cd": "1",
        "msg_cd": "EGW00201",
        "msg1": "초당 거래건수를 초과하였습니다.",
    }
    assert second.json()["msg_cd"] == "EGW00201"
    assert third.json()["rt_cd"] == "0"
    assert sim.faults.pending() == []


@pytest.mark.parametrize("code", ["EGW00123", "EGW00121", "OPSQ0001"])
async def test_gateway_code_faults(
    sim: KisSimulator, http: httpx.AsyncClient, token: str, code: str
) -> None:
    sim.faults.add("order", code)
    answer = await http.post(sim.rest_url(PAPER) + ORDER, headers=headers(token, "VTTC0012U"),
                             json=buy())
    assert answer.status_code == 500
    assert answer.json()["msg_cd"] == code
    assert sim.orders == []  # refused before it became an order


async def test_any_code_with_status(
    sim: KisSimulator, http: httpx.AsyncClient, token: str
) -> None:
    sim.faults.add("order", "APBK0001", status=200, msg1="장운영시간이 아닙니다.")
    answer = await http.post(sim.rest_url(PAPER) + ORDER, headers=headers(token, "VTTC0012U"),
                             json=buy())
    assert answer.status_code == 200
    assert answer.json()["msg1"] == "장운영시간이 아닙니다."


async def test_token_fault_uses_oauth_error_shape(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    sim.faults.add("token", "EGW00133")
    answer = await request_token(sim, http)
    assert answer.status_code == 403
    assert answer.json()["error_code"] == "EGW00133"


async def test_http_5xx_without_json(
    sim: KisSimulator, http: httpx.AsyncClient, token: str
) -> None:
    sim.faults.add("price", "http_5xx", status=503)
    answer = await get_price(sim, http, token)
    assert answer.status_code == 503
    with pytest.raises(json.JSONDecodeError):
        answer.json()


async def test_hang_never_answers(sim: KisSimulator, token: str) -> None:
    sim.faults.add("price", "hang")
    async with httpx.AsyncClient(timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await get_price(sim, client, token)


async def test_drop_closes_connection(
    sim: KisSimulator, http: httpx.AsyncClient, token: str
) -> None:
    sim.faults.add("*", "drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await get_price(sim, http, token)


@pytest.mark.parametrize("then", ["hang", "drop"])
async def test_timeout_after_accept_places_the_order(
    sim: KisSimulator, token: str, then: str
) -> None:
    sim.faults.add("order", "timeout_after_accept", then=then)
    async with httpx.AsyncClient(timeout=0.3) as client:
        with pytest.raises((httpx.ReadTimeout, httpx.RemoteProtocolError)):
            await client.post(
                sim.rest_url(PAPER) + ORDER, headers=headers(token, "VTTC0012U"), json=buy(2)
            )
    assert len(sim.orders) == 1
    order = await sim.wait_order_done(sim.orders[0].odno)
    assert order.status is OrderStatus.FILLED
    assert sim.account(demo_account().app_key).holdings["005930"] == 12


async def test_reject_after_accept(
    sim: KisSimulator, http: httpx.AsyncClient, token: str
) -> None:
    sim.faults.add("order", "reject_after_accept")
    answer = await http.post(
        sim.rest_url(PAPER) + ORDER, headers=headers(token, "VTTC0012U"), json=buy(3)
    )
    assert answer.json()["rt_cd"] == "0"
    order = await sim.wait_order_done(answer.json()["output"]["ODNO"])
    assert order.status is OrderStatus.REJECTED
    refusal = sim.notices[-1].fields
    assert (refusal[13], refusal[12]) == ("1", "1")  # CNTG_YN 1, RFUS_YN 1
    account = sim.account(demo_account().app_key)
    assert account.reserved_cash == 0 and account.cash == 10_000_000


def test_unknown_fault_refused() -> None:
    sim = KisSimulator()
    with pytest.raises(ValueError):
        sim.faults.add("nowhere", "EGW00201")
    with pytest.raises(ValueError):
        sim.faults.add("price", "explode")
    with pytest.raises(ValueError):
        sim.faults.add("price", "timeout_after_accept")
    with pytest.raises(ValueError):
        sim.faults.add("ws", "hang")


async def approval_key(sim: KisSimulator, http: httpx.AsyncClient, account: SimAccount) -> str:
    answer = await http.post(
        sim.rest_url(PAPER) + "/oauth2/Approval",
        json={
            "grant_type": "client_credentials",
            "appkey": account.app_key,
            "secretkey": account.app_secret,
        },
    )
    return str(answer.json()["approval_key"])


def subscribe(key: str, hts_id: str) -> str:
    return json.dumps(
        {
            "header": {"approval_key": key, "custtype": "P", "tr_type": "1",
                       "content-type": "utf-8"},
            "body": {"input": {"tr_id": "H0STCNI9", "tr_key": hts_id}},
        }
    )


@pytest.mark.parametrize(
    ("kind", "msg_cd"),
    [("refuse_tr_key", "OPSP8993"), ("already_in_use", "OPSP8996"), ("OPSP0008", "OPSP0008")],
)
async def test_ws_refusal_faults(
    sim: KisSimulator, http: httpx.AsyncClient, kind: str, msg_cd: str
) -> None:
    account = demo_account()
    key = await approval_key(sim, http, account)
    sim.faults.add("ws", kind)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
        await ws.send(subscribe(key, account.hts_id))
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer["body"]["msg_cd"] == msg_cd
        await ws.send(subscribe(key, account.hts_id))  # the fault has cleared
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer["body"]["msg_cd"] == "OPSP0000"


@pytest.mark.parametrize("kind", ["silent_drop", "drop"])
async def test_ws_drop_faults_send_no_close_frame(
    sim: KisSimulator, http: httpx.AsyncClient, kind: str
) -> None:
    account = demo_account()
    key = await approval_key(sim, http, account)
    sim.faults.add("ws", kind)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
        await ws.send(subscribe(key, account.hts_id))
        with pytest.raises(ConnectionClosedError) as closed:
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert kind == "drop" and message["body"]["msg_cd"] == "OPSP0000"
        assert closed.value.rcvd is None


async def test_drop_ws_on_demand(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    key = await approval_key(sim, http, account)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
        await ws.send(subscribe(key, account.hts_id))
        await asyncio.wait_for(ws.recv(), 5)
        assert sim.drop_ws(account.app_key) == 1
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ws.recv(), 5)
    await sim.wait_for(lambda: not sim.ws_connected(account.app_key))
