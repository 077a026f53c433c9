"""The simulator's REST side, spoken to with raw HTTP over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kis.env import Environment
from kis.sim import (
    KisSimulator,
    ManualClock,
    OrderStatus,
    SimAccount,
    demo_account,
    demo_real_account,
)

PAPER = Environment.PAPER
REAL = Environment.REAL
ORDER = "/uapi/domestic-stock/v1/trading/order-cash"
BALANCE = "/uapi/domestic-stock/v1/trading/inquire-balance"
CCLD = "/uapi/domestic-stock/v1/trading/inquire-daily-ccld"
PRICE = "/uapi/domestic-stock/v1/quotations/inquire-price"
PSBL = "/uapi/domestic-stock/v1/trading/inquire-psbl-order"
RVSECNCL = "/uapi/domestic-stock/v1/trading/order-rvsecncl"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[KisSimulator]:
    # Generous limits so tests that are not about the rate limit never meet it.
    simulator = KisSimulator(clock=clock, rate_limits={PAPER: 1000, REAL: 1000})
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def issue_token(
    http: httpx.AsyncClient, sim: KisSimulator, account: SimAccount
) -> str:
    url = sim.rest_url(account.env) + "/oauth2/tokenP"
    answer = await http.post(url, json=token_body(account))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def token_body(account: SimAccount, appsecret: str | None = None) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "appkey": account.app_key,
        "appsecret": account.app_secret if appsecret is None else appsecret,
    }


def headers(account: SimAccount, token: str, tr_id: str, tr_cont: str = "") -> dict[str, str]:
    return {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {token}",
        "appkey": account.app_key,
        "appsecret": account.app_secret,
        "tr_id": tr_id,
        "custtype": "P",
        "tr_cont": tr_cont,
    }


def order_body(
    account: SimAccount, symbol: str, qty: int, price: int = 0, ord_dvsn: str = "01"
) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": symbol,
        "ORD_DVSN": ord_dvsn,
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
        "EXCG_ID_DVSN_CD": "KRX",
        "SLL_TYPE": "",
        "CNDT_PRIC": "",
    }


def rvsecncl_body(
    account: SimAccount, placed: dict[str, str], dvsn_cd: str, price: str
) -> dict[str, str]:
    """Revise ("01") or cancel ("02") all of the order `placed` answered for."""
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": "01",
        "KRX_FWDG_ORD_ORGNO": placed["KRX_FWDG_ORD_ORGNO"],
        "ORGN_ODNO": placed["ODNO"],
        "ORD_DVSN": "00",
        "RVSE_CNCL_DVSN_CD": dvsn_cd,
        "ORD_QTY": "0",
        "ORD_UNPR": price,
        "QTY_ALL_ORD_YN": "Y",
        "EXCG_ID_DVSN_CD": "KRX",
    }


def balance_params(account: SimAccount, nk: str = "") -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "AFHR_FLPR_YN": "N",
        "OFL_YN": "",
        "INQR_DVSN": "02",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "00",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": nk,
    }


def ccld_params(account: SimAccount, day: str, nk: str = "") -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "INQR_STRT_DT": day,
        "INQR_END_DT": day,
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "01",
        "PDNO": "",
        "CCLD_DVSN": "00",
        "ORD_GNO_BRNO": "",
        "ODNO": "",
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
        "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": nk,
    }


async def test_token_answer_and_one_a_minute_rule(
    sim: KisSimulator, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    account = demo_account()
    url = sim.rest_url(PAPER) + "/oauth2/tokenP"
    body = token_body(account)
    first = await http.post(url, json=body)
    assert first.status_code == 200
    data = first.json()
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 86400
    assert len(data["access_token_token_expired"]) == 19  # YYYY-MM-DD HH:MM:SS
    assert data["access_token_token_expired"] == "2026-01-02 10:00:00"

    clock.advance(30)
    again = await http.post(url, json=body)
    assert again.status_code == 403
    assert again.json() == {
        "error_code": "EGW00133",
        "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
    }
    clock.advance(31)
    later = await http.post(url, json=body)
    assert later.status_code == 200
    # Within six hours KIS hands back the same token.
    assert later.json()["access_token"] == data["access_token"]
    assert sim.token_issuances[account.app_key] == 2


async def test_paper_key_on_real_host_is_refused(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    paper = demo_account()
    answer = await http.post(sim.rest_url(REAL) + "/oauth2/tokenP", json=token_body(paper))
    assert answer.status_code == 403
    assert answer.json()["error_code"] == "EGW00103"
    wrong_secret = await http.post(
        sim.rest_url(PAPER) + "/oauth2/tokenP",
        json=token_body(paper, appsecret="x"),
    )
    assert wrong_secret.json()["error_code"] == "EGW00105"
    assert paper.app_key not in sim.token_issuances


async def test_approval_uses_secretkey_field(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    paper = demo_account()
    url = sim.rest_url(PAPER) + "/oauth2/Approval"
    wrong = await http.post(
        url,
        json={
            "grant_type": "client_credentials",
            "appkey": paper.app_key,
            "appsecret": paper.app_secret,
        },
    )
    assert wrong.status_code == 403
    right = await http.post(
        url,
        json={
            "grant_type": "client_credentials",
            "appkey": paper.app_key,
            "secretkey": paper.app_secret,
        },
    )
    assert right.status_code == 200
    assert len(right.json()["approval_key"]) == 36


async def test_market_buy_fills_and_updates_balance(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    answer = await http.post(
        sim.rest_url(PAPER) + ORDER,
        headers=headers(account, token, "VTTC0012U"),
        json=order_body(account, "005930", 3),
    )
    assert answer.status_code == 200
    data = answer.json()
    assert data["rt_cd"] == "0", data
    output = data["output"]
    assert len(output["ODNO"]) == 10 and output["ODNO"].isdigit()
    assert len(output["ORD_TMD"]) == 6
    order = await sim.wait_order_done(output["ODNO"])
    assert order.status is OrderStatus.FILLED
    live = sim.account(account.app_key)
    assert live.holdings["005930"] == 13
    assert live.cash == 10_000_000 - 3 * 71_000
    assert live.reserved_cash == 0

    balance = await http.get(
        sim.rest_url(PAPER) + BALANCE,
        headers=headers(account, token, "VTTC8434R"),
        params=balance_params(account),
    )
    assert balance.headers["tr_cont"] == "D"
    body = balance.json()
    row = body["output1"][0]
    assert (row["pdno"], row["hldg_qty"], row["ord_psbl_qty"]) == ("005930", "13", "13")
    assert body["output2"][0]["dnca_tot_amt"] == str(10_000_000 - 3 * 71_000)

    # A second order gets a larger order number.
    second = await http.post(
        sim.rest_url(PAPER) + ORDER,
        headers=headers(account, token, "VTTC0011U"),
        json={**order_body(account, "005930", 1), "SLL_TYPE": "01"},
    )
    assert int(second.json()["output"]["ODNO"]) > int(output["ODNO"])
    assert [r.tr_id for r in sim.requests if r.endpoint == "order"] == ["VTTC0012U", "VTTC0011U"]


async def test_order_refusals(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    url = sim.rest_url(PAPER) + ORDER
    good = order_body(account, "005930", 1)

    async def send(body: dict[str, object], **over: str) -> httpx.Response:
        sent = {**headers(account, token, "VTTC0012U"), **over}
        return await http.post(url, headers=sent, json=body)

    no_tr_id = {k: v for k, v in headers(account, token, "").items() if k != "tr_id"}
    missing = await http.post(url, headers=no_tr_id, json=good)
    assert missing.json()["rt_cd"] != "0"

    non_string = await send({**good, "ORD_QTY": 1})
    assert non_string.status_code == 500
    assert non_string.json()["msg_cd"] == "OPSQ2001"
    assert "ORD_QTY" in non_string.json()["msg1"]

    real_tr = await send(good, tr_id="TTTC0012U")
    assert real_tr.json()["msg_cd"] == "EGW02006"

    bad_dvsn = await send({**good, "ORD_DVSN": "09"})
    assert bad_dvsn.json()["rt_cd"] != "0"
    after_hours = await send({**good, "ORD_DVSN": "06"})
    assert after_hours.json()["msg1"] == "모의투자에서는 해당업무가 제공되지 않습니다."

    no_exchange = await send({k: v for k, v in good.items() if k != "EXCG_ID_DVSN_CD"})
    assert "EXCG_ID_DVSN_CD" in no_exchange.json()["msg1"]

    wrong_account = await send({**good, "CANO": "99999999"})
    assert wrong_account.json()["msg_cd"] == "OPSQ2000"

    too_much = await send(order_body(account, "005930", 200))  # reserved at upper limit
    assert too_much.status_code == 200
    assert too_much.json()["rt_cd"] == "1"
    assert too_much.json()["msg_cd"] == "APBK0952"

    off_tick = await send(order_body(account, "005930", 1, 71_050, "00"))
    assert off_tick.json()["msg_cd"] == "APBK0506"
    beyond = await send(order_body(account, "005930", 1, 95_000, "00"))
    assert beyond.json()["msg_cd"] == "APBK0919"
    unknown = await send(order_body(account, "999999", 1))
    assert unknown.json()["msg_cd"] == "APBK0656"
    market_with_price = await send(order_body(account, "005930", 1, 71_000, "01"))
    assert market_with_price.json()["rt_cd"] == "1"

    oversell = await send(
        {**order_body(account, "005930", 11), "SLL_TYPE": "01"}, tr_id="VTTC0011U"
    )
    assert oversell.json()["msg_cd"] == "APBK0400"

    no_custtype = await send(good, custtype="")
    assert no_custtype.json()["rt_cd"] != "0"
    text_body = await http.post(
        url,
        headers={**headers(account, token, "VTTC0012U"), "content-type": "text/plain"},
        content=b"{}",
    )
    assert text_body.json()["rt_cd"] != "0"
    bad_token = await send(good, authorization="Bearer nope")
    assert bad_token.json()["msg_cd"] == "EGW00121"
    assert sim.orders == []


async def test_expired_token(
    sim: KisSimulator, http: httpx.AsyncClient, clock: ManualClock
) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    clock.advance(86_401)
    answer = await http.get(
        sim.rest_url(PAPER) + PRICE,
        headers=headers(account, token, "FHKST01010100"),
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"},
    )
    assert answer.status_code == 500
    assert answer.json()["msg_cd"] == "EGW00123"


async def test_real_account_uses_real_tr_ids(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_real_account()
    token = await issue_token(http, sim, account)
    url = sim.rest_url(REAL) + ORDER
    paper_tr = await http.post(
        url, headers=headers(account, token, "VTTC0012U"), json=order_body(account, "005930", 1)
    )
    assert paper_tr.json()["msg_cd"] == "EGW02004"
    old_tr = await http.post(
        url,
        headers=headers(account, token, "TTTC0802U"),
        json={k: v for k, v in order_body(account, "005930", 1).items() if k != "EXCG_ID_DVSN_CD"},
    )
    assert old_tr.json()["rt_cd"] == "0"
    assert old_tr.json()["msg_cd"] == "APBK0013"


async def test_price_inquiry(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    answer = await http.get(
        sim.rest_url(PAPER) + PRICE,
        headers=headers(account, token, "FHKST01010100"),
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "069500"},
    )
    output = answer.json()["output"]
    assert output["stck_prpr"] == "35000"
    assert output["aspr_unit"] == "5"  # ETF
    assert output["stck_mxpr"] == "45500"
    assert output["stck_llam"] == "24500"
    assert output["temp_stop_yn"] == "N"


async def test_limit_order_rests_then_fills_on_set_price(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    answer = await http.post(
        sim.rest_url(PAPER) + ORDER,
        headers=headers(account, token, "VTTC0012U"),
        json=order_body(account, "005930", 2, 70_000, "00"),
    )
    odno = answer.json()["output"]["ODNO"]
    order = sim.order(odno)
    await sim.wait_for(lambda: len(sim.notices) >= 1)
    assert order.status is OrderStatus.OPEN
    assert sim.account(account.app_key).reserved_cash == 140_000

    # Buyable amount reflects the reservation.
    psbl = await http.get(
        sim.rest_url(PAPER) + PSBL,
        headers=headers(account, token, "VTTC8908R"),
        params={
            "CANO": account.cano,
            "ACNT_PRDT_CD": "01",
            "PDNO": "005930",
            "ORD_UNPR": "70000",
            "ORD_DVSN": "00",
            "CMA_EVLU_AMT_ICLD_YN": "N",
            "OVRS_ICLD_YN": "N",
        },
    )
    assert psbl.json()["output"]["nrcvb_buy_amt"] == str(10_000_000 - 140_000)
    assert psbl.json()["output"]["nrcvb_buy_qty"] == str((10_000_000 - 140_000) // 70_000)

    sim.set_price("005930", 70_500)
    assert order.status is OrderStatus.OPEN
    sim.set_price("005930", 69_900)
    assert order.status is OrderStatus.FILLED
    assert order.fills[-1].price == 70_000
    assert sim.account(account.app_key).cash == 10_000_000 - 140_000


async def test_cancel_resting_order(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    placed = await http.post(
        sim.rest_url(PAPER) + ORDER,
        headers=headers(account, token, "VTTC0012U"),
        json=order_body(account, "005930", 2, 70_000, "00"),
    )
    output = placed.json()["output"]
    cancel = await http.post(
        sim.rest_url(PAPER) + RVSECNCL,
        headers=headers(account, token, "VTTC0013U"),
        json=rvsecncl_body(account, output, "02", "0"),
    )
    assert cancel.json()["rt_cd"] == "0", cancel.json()
    assert sim.order(output["ODNO"]).status is OrderStatus.CANCELLED
    assert sim.account(account.app_key).reserved_cash == 0


async def test_balance_paging(clock: ManualClock, http: httpx.AsyncClient) -> None:
    account = demo_account()
    account.holdings.update({"000660": 1, "035720": 2, "069500": 3, "035420": 4})
    async with KisSimulator(
        [account], clock=clock, balance_page_rows={PAPER: 2}, rate_limits={PAPER: 100}
    ) as sim:
        token = await issue_token(http, sim, account)
        url = sim.rest_url(PAPER) + BALANCE
        seen: list[str] = []
        nk, tr_cont, pages = "", "", 0
        while True:
            answer = await http.get(
                url,
                headers=headers(account, token, "VTTC8434R", tr_cont),
                params=balance_params(account, nk),
            )
            body = answer.json()
            seen += [row["pdno"] for row in body["output1"]]
            pages += 1
            if answer.headers["tr_cont"] in ("D", "E"):
                break
            assert answer.headers["tr_cont"] == "M"
            nk, tr_cont = body["ctx_area_nk100"], "N"
        assert pages == 3
        assert seen == ["005930", "000660", "035720", "069500", "035420"]
        # Without tr_cont N the first page comes back, as at KIS.
        again = await http.get(
            url, headers=headers(account, token, "VTTC8434R"), params=balance_params(account, nk)
        )
        assert [r["pdno"] for r in again.json()["output1"]] == ["005930", "000660"]


async def test_daily_executions_paged(clock: ManualClock, http: httpx.AsyncClient) -> None:
    account = demo_account()
    async with KisSimulator(
        [account], clock=clock, executions_page_rows={PAPER: 2}, rate_limits={PAPER: 100}
    ) as sim:
        token = await issue_token(http, sim, account)
        odnos = []
        for _ in range(3):
            placed = await http.post(
                sim.rest_url(PAPER) + ORDER,
                headers=headers(account, token, "VTTC0012U"),
                json=order_body(account, "035720", 1),
            )
            odnos.append(placed.json()["output"]["ODNO"])
        await sim.wait_for(lambda: all(sim.order(o).filled_qty == 1 for o in odnos))
        url = sim.rest_url(PAPER) + CCLD
        first = await http.get(
            url,
            headers=headers(account, token, "VTTC0081R"),
            params=ccld_params(account, "20260101"),
        )
        assert first.headers["tr_cont"] == "M"
        rows = first.json()["output1"]
        second = await http.get(
            url,
            headers=headers(account, token, "VTTC0081R", "N"),
            params=ccld_params(account, "20260101", first.json()["ctx_area_nk100"]),
        )
        assert second.headers["tr_cont"] == "D"
        rows += second.json()["output1"]
        assert [r["odno"] for r in rows] == odnos
        assert all(r["tot_ccld_qty"] == "1" and r["avg_prvs"] == "42000" for r in rows)
        assert all(r["sll_buy_dvsn_cd"] == "02" and r["rmn_qty"] == "0" for r in rows)
        other_day = await http.get(
            url,
            headers=headers(account, token, "VTTC0081R"),
            params=ccld_params(account, "20251231"),
        )
        assert other_day.json()["output1"] == []


async def test_rate_limit_egw00201(clock: ManualClock, http: httpx.AsyncClient) -> None:
    account = demo_account()
    async with KisSimulator([account], clock=clock) as sim:  # paper default: 2/s
        token = await issue_token(http, sim, account)
        params = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
        hdrs = headers(account, token, "FHKST01010100")
        codes = []
        for _ in range(3):
            answer = await http.get(sim.rest_url(PAPER) + PRICE, headers=hdrs, params=params)
            codes.append(answer.json()["msg_cd"])
        assert codes[2] == "EGW00201" and "EGW00201" not in codes[:2]
        clock.advance(1.0)
        answer = await http.get(sim.rest_url(PAPER) + PRICE, headers=hdrs, params=params)
        assert answer.json()["rt_cd"] == "0"


async def test_unknown_path_is_404(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    answer = await http.get(sim.rest_url(PAPER) + "/uapi/nothing")
    assert answer.status_code == 404
    assert sim.env_vars()["MOAHOOK_KIS_PAPER_URL"] == sim.rest_url(PAPER)


async def test_no_secrets_in_records(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    await http.get(
        sim.rest_url(PAPER) + PRICE,
        headers=headers(account, token, "FHKST01010100"),
        params={"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"},
    )
    text = repr(sim.requests) + repr(sim.account(account.app_key)) + repr(sim.orders)
    assert account.app_secret not in text
    assert token not in text
    assert account.app_key not in text


async def test_revise_resting_order_to_a_crossing_price(
    sim: KisSimulator, http: httpx.AsyncClient
) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    placed = await http.post(
        sim.rest_url(PAPER) + ORDER,
        headers=headers(account, token, "VTTC0012U"),
        json=order_body(account, "005930", 2, 70_000, "00"),
    )
    output = placed.json()["output"]
    revise = await http.post(
        sim.rest_url(PAPER) + RVSECNCL,
        headers=headers(account, token, "VTTC0013U"),
        json=rvsecncl_body(account, output, "01", "71000"),
    )
    assert revise.json()["rt_cd"] == "0", revise.json()
    new_odno = revise.json()["output"]["ODNO"]
    assert new_odno != output["ODNO"]
    revised = await sim.wait_order_done(new_odno)
    assert revised.status is OrderStatus.FILLED
    assert revised.original_odno == output["ODNO"]
    assert sim.order(output["ODNO"]).status is OrderStatus.CANCELLED
    live = sim.account(account.app_key)
    assert (live.holdings["005930"], live.reserved_cash) == (12, 0)


async def test_fill_delay(clock: ManualClock, http: httpx.AsyncClient) -> None:
    account = demo_account()
    async with KisSimulator([account], clock=clock, fill_delay_s=0.2) as sim:
        token = await issue_token(http, sim, account)
        placed = await http.post(
            sim.rest_url(PAPER) + ORDER,
            headers=headers(account, token, "VTTC0012U"),
            json=order_body(account, "005930", 1),
        )
        order = sim.order(placed.json()["output"]["ODNO"])
        assert order.status is OrderStatus.OPEN
        assert sim.account(account.app_key).reserved_cash == 92_300  # upper limit
        await sim.wait_order_done(order.odno)
        assert order.status is OrderStatus.FILLED


async def test_market_closed(sim: KisSimulator, http: httpx.AsyncClient) -> None:
    account = demo_account()
    token = await issue_token(http, sim, account)
    sim.market_open = False
    answer = await http.post(
        sim.rest_url(PAPER) + ORDER,
        headers=headers(account, token, "VTTC0012U"),
        json=order_body(account, "005930", 1),
    )
    assert answer.json()["rt_cd"] == "1"
    assert sim.orders == []
