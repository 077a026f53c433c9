"""The simulator's WebSocket side, spoken to with a raw `websockets` client."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from kis.env import Environment
from kis.sim import KisSimulator, SimAccount, demo_account, demo_real_account

PAPER = Environment.PAPER


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture
async def sim() -> AsyncIterator[KisSimulator]:
    simulator = KisSimulator(rate_limits={PAPER: 1000, Environment.REAL: 1000})
    await simulator.start()
    yield simulator
    await simulator.stop()


async def approval(http: httpx.AsyncClient, sim: KisSimulator, account: SimAccount) -> str:
    answer = await http.post(
        sim.rest_url(account.env) + "/oauth2/Approval",
        json={
            "grant_type": "client_credentials",
            "appkey": account.app_key,
            "secretkey": account.app_secret,
        },
    )
    return str(answer.json()["approval_key"])


def subscribe_text(key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    return json.dumps(
        {
            "header": {
                "approval_key": key,
                "custtype": "P",
                "tr_type": tr_type,
                "content-type": "utf-8",
            },
            "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}},
        }
    )


async def recv_json(ws: ClientConnection) -> dict[str, dict[str, object]]:
    text = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(text, str)
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def decrypt(payload: str, key: str, iv: str) -> str:
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    padded = decryptor.update(base64.b64decode(payload)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


async def issue_token(http: httpx.AsyncClient, sim: KisSimulator, account: SimAccount) -> str:
    answer = await http.post(
        sim.rest_url(account.env) + "/oauth2/tokenP",
        json={
            "grant_type": "client_credentials",
            "appkey": account.app_key,
            "appsecret": account.app_secret,
        },
    )
    return str(answer.json()["access_token"])


async def market_order(
    http: httpx.AsyncClient, sim: KisSimulator, account: SimAccount, qty: int
) -> str:
    token = await issue_token(http, sim, account)
    answer = await http.post(
        sim.rest_url(PAPER) + "/uapi/domestic-stock/v1/trading/order-cash",
        headers={
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {token}",
            "appkey": account.app_key,
            "appsecret": account.app_secret,
            "tr_id": "VTTC0012U",
            "custtype": "P",
        },
        json={
            "CANO": account.cano,
            "ACNT_PRDT_CD": "01",
            "PDNO": "005930",
            "ORD_DVSN": "01",
            "ORD_QTY": str(qty),
            "ORD_UNPR": "0",
            "EXCG_ID_DVSN_CD": "KRX",
            "SLL_TYPE": "",
            "CNDT_PRIC": "",
        },
    )
    assert answer.json()["rt_cd"] == "0", answer.text
    return str(answer.json()["output"]["ODNO"])


async def test_subscribe_and_decrypt_acceptance_and_partial_fills(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    key = await approval(http, sim, account)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
        await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id))
        answer = await recv_json(ws)
        assert answer["header"]["tr_id"] == "H0STCNI9"
        assert answer["body"]["msg_cd"] == "OPSP0000"
        assert answer["body"]["msg1"] == "SUBSCRIBE SUCCESS"
        output = answer["body"]["output"]
        assert isinstance(output, dict)
        aes_key, iv = str(output["key"]), str(output["iv"])
        assert (len(aes_key), len(iv)) == (32, 16)

        odno = await market_order(http, sim, account, 10)
        records = []
        for _ in range(3):
            frame = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(frame, str)
            encrypted, tr_id, count, payload = frame.split("|", 3)
            assert (encrypted, tr_id, count) == ("1", "H0STCNI9", "001")
            records.append(decrypt(payload, aes_key, iv).split("^"))
        assert all(len(r) == 26 for r in records)
        accepted, fill1, fill2 = records
        assert accepted[0] == "moademo"
        assert accepted[2] == odno
        assert accepted[4] == "02"  # buy
        assert (accepted[13], accepted[12], accepted[14]) == ("1", "0", "1")
        assert (accepted[9], accepted[10]) == ("10", "0")  # order qty, market price 0
        assert [fill1[13], fill2[13]] == ["2", "2"]
        assert int(fill1[9]) + int(fill2[9]) == 10 and fill1[9] != "10"
        assert fill1[10] == "71000"
        assert fill1[16] == "10"
        assert fill1[24] == "삼성전자"

        # Already subscribed, then unsubscribe.
        await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id))
        assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP0002"
        await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id, "2"))
        assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP0001"


async def test_fresh_key_per_subscription(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    key = await approval(http, sim, account)
    seen = set()
    for _ in range(2):
        async with connect(sim.ws_url(PAPER)) as ws:  # the bare path works too
            await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id))
            output = (await recv_json(ws))["body"]["output"]
            assert isinstance(output, dict)
            seen.add((output["key"], output["iv"]))
        await sim.wait_for(lambda: not sim.ws_connected(account.app_key))
    assert len(seen) == 2


async def test_wrong_hts_id_refused(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    key = await approval(http, sim, account)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
        await ws.send(subscribe_text(key, "H0STCNI9", "someoneelse"))
        answer = await recv_json(ws)
        assert answer["body"]["msg_cd"] == "OPSP8993"
        assert answer["body"]["rt_cd"] != "0"
        assert "invalid tr_key" in str(answer["body"]["msg1"])


async def test_wrong_hts_id_silent_drop_mode(http: httpx.AsyncClient) -> None:
    async with KisSimulator(wrong_hts_id="silent_drop") as sim:
        account = demo_account()
        key = await approval(http, sim, account)
        async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
            await ws.send(subscribe_text(key, "H0STCNI9", "someoneelse"))
            with pytest.raises(ConnectionClosedError) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            assert closed.value.rcvd is None  # no close frame


async def test_control_refusals(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    key = await approval(http, sim, account)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
        await ws.send(subscribe_text("not-a-key", "H0STCNI9", account.hts_id))
        assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP0011"
        await ws.send(subscribe_text(key, "H0STCNI0", account.hts_id))  # the real TR on paper
        assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP8991"
        await ws.send("not json")
        assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP9999"
        # The paper approval key is unknown on the real WebSocket.
        async with connect(sim.ws_url(Environment.REAL) + "/tryitout") as real_ws:
            await real_ws.send(subscribe_text(key, "H0STCNI0", account.hts_id))
            assert (await recv_json(real_ws))["body"]["msg_cd"] == "OPSP0011"


async def test_second_session_for_same_app_key_refused(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    key = await approval(http, sim, account)
    async with connect(sim.ws_url(PAPER) + "/tryitout") as first:
        await first.send(subscribe_text(key, "H0STCNI9", account.hts_id))
        assert (await recv_json(first))["body"]["msg_cd"] == "OPSP0000"
        async with connect(sim.ws_url(PAPER) + "/tryitout") as second:
            await second.send(subscribe_text(key, "H0STCNI9", account.hts_id))
            answer = await recv_json(second)
            assert answer["body"]["msg_cd"] == "OPSP8996"
            assert answer["body"]["msg1"] == "ALREADY IN USE appkey"


async def test_real_fill_notice_tr(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_real_account()
    key = await approval(http, sim, account)
    async with connect(sim.ws_url(Environment.REAL) + "/tryitout") as ws:
        await ws.send(subscribe_text(key, "H0STCNI0", account.hts_id))
        assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP0000"


async def test_pingpong_echo_recorded(http: httpx.AsyncClient) -> None:
    async with KisSimulator(ping_interval_s=0.05) as sim:
        account = demo_account()
        key = await approval(http, sim, account)
        async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
            await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id))

            async def next_ping() -> str:
                # The first ping may come before or after the subscribe answer.
                while True:
                    frame = await ws.recv()
                    assert isinstance(frame, str)
                    if json.loads(frame)["header"]["tr_id"] == "PINGPONG":
                        return frame

            text = await asyncio.wait_for(next_ping(), 5)
            ping = json.loads(text)
            assert ping["header"]["tr_id"] == "PINGPONG"
            assert len(ping["header"]["datetime"]) == 14
            await ws.send(text)
            await sim.wait_for(lambda: sim.pongs_received(account.app_key) >= 1)
            # A reply that is not identical does not count.
            await ws.send(json.dumps({"header": {"tr_id": "PINGPONG"}}))
            assert sim.pongs_received(account.app_key) == 1


async def test_unanswered_pingpong_closes_connection(http: httpx.AsyncClient) -> None:
    async with KisSimulator(ping_interval_s=0.02, pong_timeout_s=0.05) as sim:
        account = demo_account()
        key = await approval(http, sim, account)
        async with connect(sim.ws_url(PAPER) + "/tryitout") as ws:
            await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id))
            await recv_json(ws)

            async def drain() -> None:
                while True:
                    await ws.recv()  # never echo

            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(drain(), 5)
        assert sim.pongs_received(account.app_key) == 0
        assert sim.pings_sent(account.app_key) >= 1


async def test_unknown_ws_path_refused(sim: KisSimulator) -> None:
    base = sim.ws_url(PAPER).rsplit("/", 1)[0]
    with pytest.raises(InvalidStatus):
        async with connect(base + "/nowhere"):
            pass


async def test_many_idle_connections_are_cheap(http: httpx.AsyncClient) -> None:
    from kis.sim import generate_accounts

    accounts = generate_accounts(50)
    async with KisSimulator(accounts) as sim:
        sockets = []
        try:
            for account in accounts:
                key = await approval(http, sim, account)
                ws = await connect(sim.ws_url(PAPER) + "/tryitout")
                sockets.append(ws)
                await ws.send(subscribe_text(key, "H0STCNI9", account.hts_id))
                assert (await recv_json(ws))["body"]["msg_cd"] == "OPSP0000"
            assert sim.ws_connection_count() == 50
        finally:
            for ws in sockets:
                await ws.close()
