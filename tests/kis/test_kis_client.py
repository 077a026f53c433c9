"""KisClient against respx: exact requests per endpoint, retries, order safety."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import respx

from kis.client import (
    BALANCE_PATH,
    BUYABLE_PATH,
    EXECUTIONS_PATH,
    ORDER_PATH,
    PRICE_PATH,
    REVISE_CANCEL_PATH,
    KisClient,
    default_http_client,
)
from kis.env import Endpoints, Environment
from kis.errors import (
    KisApiError,
    KisRateLimited,
    KisServerError,
    KisTokenInvalid,
    KisTransportError,
    OrderOutcomeUnknown,
)
from kis.models import Account, AppCredentials, OrderRequest, OrderType, Side
from kis.secret import Secret
from kis.tokenstore import MemoryTokenStore

REAL_URL = "https://real.kis.test:9443"
PAPER_URL = "https://paper.kis.test:29443"
ENDPOINTS = Endpoints(
    rest={Environment.REAL: REAL_URL, Environment.PAPER: PAPER_URL},
    ws={Environment.REAL: "ws://real.kis.test:21000", Environment.PAPER: "ws://p.kis.test:31000"},
)
APP_KEY = "PSkeyABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
APP_SECRET = "SECRETxyz" + "s" * 170
ACCOUNT = Account.parse("12345678-01")
TOKEN_EXPIRED_AT = "2030-01-01 09:00:00"
BASE = {Environment.REAL: REAL_URL, Environment.PAPER: PAPER_URL}
BUY = {Environment.REAL: "TTTC0012U", Environment.PAPER: "VTTC0012U"}
SELL = {Environment.REAL: "TTTC0011U", Environment.PAPER: "VTTC0011U"}
RVSE = {Environment.REAL: "TTTC0013U", Environment.PAPER: "VTTC0013U"}
BAL = {Environment.REAL: "TTTC8434R", Environment.PAPER: "VTTC8434R"}
PSBL = {Environment.REAL: "TTTC8908R", Environment.PAPER: "VTTC8908R"}
CCLD = {Environment.REAL: "TTTC0081R", Environment.PAPER: "VTTC0081R"}
ENVS = [Environment.REAL, Environment.PAPER]


class FakeTime:
    """Monotonic + wall clock that only move when someone sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.start = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)


def creds(env: Environment = Environment.REAL) -> AppCredentials:
    return AppCredentials(app_key=APP_KEY, app_secret=Secret(APP_SECRET), env=env)


def token_answer(token: str = "tokenAAAA1111") -> httpx.Response:
    return httpx.Response(200, json={
        "access_token": token, "token_type": "Bearer", "expires_in": 86400,
        "access_token_token_expired": TOKEN_EXPIRED_AT,
    })


def ok(output: object = None, **extra: object) -> httpx.Response:
    body: dict[str, object] = {"rt_cd": "0", "msg_cd": "APBK0013", "msg1": "주문 전송 완료"}
    if output is not None:
        body["output"] = output
    body.update(extra)
    return httpx.Response(200, json=body)


def refused(msg_cd: str, msg1: str = "refused", status: int = 500) -> httpx.Response:
    return httpx.Response(status, json={"rt_cd": "1", "msg_cd": msg_cd, "msg1": msg1})


ORDER_OUTPUT = {"KRX_FWDG_ORD_ORGNO": "91252", "ODNO": "0000117057", "ORD_TMD": "121052"}


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        for url in (REAL_URL, PAPER_URL):
            mock.post(url + "/oauth2/tokenP", name=f"token{url}").mock(
                return_value=token_answer()
            )
        yield mock


@pytest.fixture
async def client(clock: FakeTime) -> AsyncIterator[KisClient]:
    async with httpx.AsyncClient() as http:
        yield KisClient(
            endpoints=ENDPOINTS, http=http, token_store=MemoryTokenStore(),
            clock=clock.monotonic, sleep=clock.sleep, now=clock.now,
        )


def expected_headers(
    tr_id: str, token: str = "tokenAAAA1111", tr_cont: str = ""
) -> dict[str, str]:
    return {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {token}",
        "appkey": APP_KEY,
        "appsecret": APP_SECRET,
        "tr_id": tr_id,
        "custtype": "P",
        "tr_cont": tr_cont,
    }


def assert_headers(request: httpx.Request, tr_id: str, **kw: str) -> None:
    for name, value in expected_headers(tr_id, **kw).items():
        assert request.headers[name] == value, name
    assert "hashkey" not in request.headers


# -- orders -----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
async def test_market_buy_sends_exact_order_cash_request(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    route = router.post(BASE[env] + ORDER_PATH, headers={"tr_id": BUY[env]}).mock(
        return_value=ok(ORDER_OUTPUT)
    )
    ack = await client.place_order(creds(env), ACCOUNT, OrderRequest("005930", Side.BUY, 3))
    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url) == BASE[env] + ORDER_PATH
    assert_headers(request, BUY[env])
    assert json.loads(request.content) == {
        "CANO": "12345678", "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_DVSN": "01",
        "ORD_QTY": "3", "ORD_UNPR": "0", "EXCG_ID_DVSN_CD": "KRX", "SLL_TYPE": "",
        "CNDT_PRIC": "",
    }
    assert ack.order_no == "0000117057"
    assert ack.branch == "91252"
    assert ack.time == "121052"
    assert ack.msg_cd == "APBK0013"


@pytest.mark.parametrize("env", ENVS)
async def test_limit_sell_uses_sell_tr_id_and_sell_type(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    route = router.post(BASE[env] + ORDER_PATH, headers={"tr_id": SELL[env]}).mock(
        return_value=ok(ORDER_OUTPUT)
    )
    order = OrderRequest("005930", Side.SELL, 10, OrderType.LIMIT, 71_000)
    await client.place_order(creds(env), ACCOUNT, order)
    body = json.loads(route.calls.last.request.content)
    assert body["ORD_DVSN"] == "00"
    assert body["ORD_UNPR"] == "71000"
    assert body["ORD_QTY"] == "10"
    assert body["SLL_TYPE"] == "01"
    assert all(isinstance(v, str) for v in body.values())


@pytest.mark.parametrize("env", ENVS)
async def test_cancel_all_remaining(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    route = router.post(BASE[env] + REVISE_CANCEL_PATH, headers={"tr_id": RVSE[env]}).mock(
        return_value=ok(ORDER_OUTPUT)
    )
    ack = await client.cancel_order(creds(env), ACCOUNT, branch="91252", order_no="0000117057")
    request = route.calls.last.request
    assert_headers(request, RVSE[env])
    assert json.loads(request.content) == {
        "CANO": "12345678", "ACNT_PRDT_CD": "01", "KRX_FWDG_ORD_ORGNO": "91252",
        "ORGN_ODNO": "0000117057", "ORD_DVSN": "00", "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": "0", "ORD_UNPR": "0", "QTY_ALL_ORD_YN": "Y", "EXCG_ID_DVSN_CD": "KRX",
    }
    assert ack.order_no == "0000117057"


async def test_revise_part_of_an_order(router: respx.MockRouter, client: KisClient) -> None:
    env = Environment.PAPER
    route = router.post(BASE[env] + REVISE_CANCEL_PATH, headers={"tr_id": "VTTC0013U"}).mock(
        return_value=ok(ORDER_OUTPUT)
    )
    await client.revise_order(creds(env), ACCOUNT, branch="00950", order_no="123",
                              quantity=2, price=70_500, order_type=OrderType.LIMIT)
    assert json.loads(route.calls.last.request.content) == {
        "CANO": "12345678", "ACNT_PRDT_CD": "01", "KRX_FWDG_ORD_ORGNO": "00950",
        "ORGN_ODNO": "123", "ORD_DVSN": "00", "RVSE_CNCL_DVSN_CD": "01",
        "ORD_QTY": "2", "ORD_UNPR": "70500", "QTY_ALL_ORD_YN": "N", "EXCG_ID_DVSN_CD": "KRX",
    }


# -- inquiries --------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
async def test_price_request_and_quote(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    route = router.get(BASE[env] + PRICE_PATH, headers={"tr_id": "FHKST01010100"}).mock(
        return_value=ok({
            "stck_prpr": "71000", "stck_mxpr": "92300", "stck_llam": "49700",
            "stck_sdpr": "71000", "aspr_unit": "100", "hts_deal_qty_unit_val": "1",
            "rprs_mrkt_kor_name": "KOSPI200", "temp_stop_yn": "N",
        })
    )
    quote = await client.price(creds(env), "005930")
    request = route.calls.last.request
    assert_headers(request, "FHKST01010100")
    assert request.url.path == PRICE_PATH
    assert dict(request.url.params) == {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    assert (quote.price, quote.upper_limit, quote.lower_limit) == (71_000, 92_300, 49_700)
    assert (quote.base_price, quote.tick, quote.suspended) == (71_000, 100, False)
    assert quote.name == "KOSPI200"


@pytest.mark.parametrize("env", ENVS)
async def test_buyable_request(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    route = router.get(BASE[env] + BUYABLE_PATH, headers={"tr_id": PSBL[env]}).mock(
        return_value=ok({"nrcvb_buy_qty": "14", "nrcvb_buy_amt": "994000", "ord_psbl_cash": "1"})
    )
    result = await client.buyable(creds(env), ACCOUNT, "005930", 71_000)
    request = route.calls.last.request
    assert_headers(request, PSBL[env])
    assert dict(request.url.params) == {
        "CANO": "12345678", "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_UNPR": "71000",
        "ORD_DVSN": "00", "CMA_EVLU_AMT_ICLD_YN": "N", "OVRS_ICLD_YN": "N",
    }
    assert (result.quantity, result.amount) == (14, 994_000)
    await client.buyable(creds(env), ACCOUNT, "005930")
    market = dict(route.calls.last.request.url.params)
    assert (market["ORD_DVSN"], market["ORD_UNPR"]) == ("01", "")


def holding_row(symbol: str, qty: int) -> dict[str, str]:
    return {"pdno": symbol, "prdt_name": f"name{symbol}", "hldg_qty": str(qty),
            "ord_psbl_qty": str(max(qty - 1, 0)), "pchs_avg_pric": "1234.5600", "prpr": "1300"}


@pytest.mark.parametrize("env", ENVS)
async def test_balance_follows_three_pages(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    summary = [{"dnca_tot_amt": "5000000", "tot_evlu_amt": "9000000"}]
    pages = [
        httpx.Response(200, headers={"tr_cont": "F"}, json={
            "rt_cd": "0", "msg_cd": "KIOK0000", "msg1": "ok",
            "ctx_area_fk100": "FK1     ", "ctx_area_nk100": "NK1     ",
            "output1": [holding_row("000001", 5), holding_row("000002", 0)], "output2": summary,
        }),
        httpx.Response(200, headers={"tr_cont": "M"}, json={
            "rt_cd": "0", "msg_cd": "KIOK0000", "msg1": "ok",
            "ctx_area_fk100": "FK2", "ctx_area_nk100": "NK2",
            "output1": [holding_row("000003", 7)], "output2": summary,
        }),
        httpx.Response(200, headers={"tr_cont": "D"}, json={
            "rt_cd": "0", "msg_cd": "KIOK0000", "msg1": "ok",
            "ctx_area_fk100": "", "ctx_area_nk100": "",
            "output1": [holding_row("005930", 2)], "output2": summary,
        }),
    ]
    route = router.get(BASE[env] + BALANCE_PATH, headers={"tr_id": BAL[env]}).mock(
        side_effect=pages
    )
    balance = await client.balance(creds(env), ACCOUNT)
    assert route.call_count == 3
    first, second, third = (call.request for call in route.calls)
    assert_headers(first, BAL[env], tr_cont="")
    assert_headers(second, BAL[env], tr_cont="N")
    assert_headers(third, BAL[env], tr_cont="N")
    assert dict(first.url.params) == {
        "CANO": "12345678", "ACNT_PRDT_CD": "01", "AFHR_FLPR_YN": "N", "OFL_YN": "",
        "INQR_DVSN": "02", "UNPR_DVSN": "01", "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N", "PRCS_DVSN": "00", "CTX_AREA_FK100": "",
        "CTX_AREA_NK100": "",
    }
    assert (second.url.params["CTX_AREA_FK100"], second.url.params["CTX_AREA_NK100"]) == (
        "FK1     ", "NK1     ")
    assert (third.url.params["CTX_AREA_FK100"], third.url.params["CTX_AREA_NK100"]) == (
        "FK2", "NK2")
    assert [h.symbol for h in balance.holdings] == ["000001", "000003", "005930"]
    held = balance.holding("005930")
    assert held is not None
    assert (held.quantity, held.sellable, held.price) == (2, 1, 1300)
    assert held.avg_price == Decimal("1234.56")
    assert balance.holding("000002") is None  # zero rows are not holdings
    assert (balance.cash, balance.total_eval) == (5_000_000, 9_000_000)


def execution_row(order_no: str, side: str = "02") -> dict[str, str]:
    return {"odno": order_no, "ord_gno_brno": "91252", "pdno": "005930",
            "sll_buy_dvsn_cd": side, "ord_qty": "10", "ord_unpr": "0", "ord_tmd": "090102",
            "tot_ccld_qty": "4", "avg_prvs": "71050.5", "rmn_qty": "6", "rjct_qty": "0",
            "cncl_yn": "N"}


@pytest.mark.parametrize("env", ENVS)
async def test_daily_executions_paging(
    router: respx.MockRouter, client: KisClient, env: Environment
) -> None:
    route = router.get(BASE[env] + EXECUTIONS_PATH, headers={"tr_id": CCLD[env]}).mock(
        side_effect=[
            httpx.Response(200, headers={"tr_cont": "M"}, json={
                "rt_cd": "0", "msg_cd": "", "msg1": "", "ctx_area_fk100": "A",
                "ctx_area_nk100": "B", "output1": [execution_row("1"), execution_row("2", "01")],
            }),
            httpx.Response(200, headers={"tr_cont": "E"}, json={
                "rt_cd": "0", "msg_cd": "", "msg1": "", "ctx_area_fk100": "",
                "ctx_area_nk100": "", "output1": [execution_row("3"), {"odno": ""}],
            }),
        ]
    )
    rows = await client.daily_executions(
        creds(env), ACCOUNT, start=date(2026, 3, 2), end=date(2026, 3, 3), order_no="1",
        symbol="005930",
    )
    first, second = (call.request for call in route.calls)
    assert dict(first.url.params) == {
        "CANO": "12345678", "ACNT_PRDT_CD": "01", "INQR_STRT_DT": "20260302",
        "INQR_END_DT": "20260303", "SLL_BUY_DVSN_CD": "00", "INQR_DVSN": "00",
        "PDNO": "005930", "CCLD_DVSN": "00", "ORD_GNO_BRNO": "", "ODNO": "1",
        "INQR_DVSN_3": "00", "INQR_DVSN_1": "", "CTX_AREA_FK100": "", "CTX_AREA_NK100": "",
    }
    assert second.headers["tr_cont"] == "N"
    assert (second.url.params["CTX_AREA_FK100"], second.url.params["CTX_AREA_NK100"]) == (
        "A", "B")
    assert [r.order_no for r in rows] == ["1", "2", "3"]
    assert rows[1].side is Side.SELL and rows[0].side is Side.BUY
    assert (rows[0].filled_qty, rows[0].remaining_qty, rows[0].avg_price) == (
        4, 6, Decimal("71050.5"))
    assert not rows[0].cancelled


# -- tokens through the client ----------------------------------------------------------


async def test_fifty_concurrent_calls_share_one_token(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.get(REAL_URL + PRICE_PATH).mock(return_value=ok({"stck_prpr": "1"}))
    await asyncio.wait_for(
        asyncio.gather(*(client.price(creds(), "005930") for _ in range(50))), 10
    )
    assert router[f"token{REAL_URL}"].call_count == 1
    assert route.call_count == 50
    token_body = json.loads(router[f"token{REAL_URL}"].calls.last.request.content)
    assert token_body == {"grant_type": "client_credentials", "appkey": APP_KEY,
                          "appsecret": APP_SECRET}


async def test_expired_token_is_reissued_once_and_the_call_retried(
    router: respx.MockRouter, client: KisClient, clock: FakeTime
) -> None:
    router[f"token{REAL_URL}"].mock(side_effect=[token_answer("tokenOLD0000"),
                                                 token_answer("tokenNEW1111")])
    route = router.post(REAL_URL + ORDER_PATH).mock(
        side_effect=[refused("EGW00123", "기간이 만료된 token 입니다."), ok(ORDER_OUTPUT)]
    )
    ack = await client.place_order(creds(), ACCOUNT, OrderRequest("005930", Side.BUY, 1))
    assert ack.order_no == "0000117057"
    assert route.call_count == 2
    assert router[f"token{REAL_URL}"].call_count == 2
    assert route.calls[0].request.headers["authorization"] == "Bearer tokenOLD0000"
    assert route.calls[1].request.headers["authorization"] == "Bearer tokenNEW1111"
    # The second issuance came within a minute of the first: it waited, it did not loop.
    assert clock.sleeps and max(clock.sleeps) == pytest.approx(60.0, abs=1.0)


async def test_token_rejected_twice_is_raised_after_one_retry(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.get(REAL_URL + PRICE_PATH).mock(return_value=refused("EGW00121"))
    with pytest.raises(KisTokenInvalid) as caught:
        await client.price(creds(), "005930")
    assert route.call_count == 2
    assert caught.value.msg_cd == "EGW00121"


# -- rate limiting and refusals ---------------------------------------------------------


async def test_rate_limited_order_is_retried_then_succeeds(
    router: respx.MockRouter, client: KisClient, clock: FakeTime
) -> None:
    route = router.post(REAL_URL + ORDER_PATH).mock(side_effect=[
        refused("EGW00201", "초당 거래건수를 초과하였습니다."),
        refused("EGW00201", "초당 거래건수를 초과하였습니다."),
        ok(ORDER_OUTPUT),
    ])
    ack = await client.place_order(creds(), ACCOUNT, OrderRequest("005930", Side.BUY, 1))
    assert ack.order_no == "0000117057"
    assert route.call_count == 3
    assert [s for s in clock.sleeps if s >= 0.2] == [0.2, 0.4]  # backoff between attempts


async def test_rate_limit_retries_are_bounded(
    router: respx.MockRouter, clock: FakeTime
) -> None:
    route = router.get(REAL_URL + PRICE_PATH).mock(return_value=refused("EGW00201"))
    async with httpx.AsyncClient() as http:
        client = KisClient(endpoints=ENDPOINTS, http=http, token_store=MemoryTokenStore(),
                           clock=clock.monotonic, sleep=clock.sleep, now=clock.now,
                           max_rate_limit_retries=3)
        with pytest.raises(KisRateLimited):
            await client.price(creds(), "005930")
    assert route.call_count == 4


async def test_business_refusal_with_http_500_is_an_api_error_not_retried(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.post(REAL_URL + ORDER_PATH).mock(
        return_value=refused("APBK0919", "주문가능금액을 초과 했습니다", 500)
    )
    with pytest.raises(KisApiError) as caught:
        await client.place_order(creds(), ACCOUNT, OrderRequest("005930", Side.BUY, 1))
    error = caught.value
    assert type(error) is KisApiError
    assert (error.rt_cd, error.msg_cd, error.http_status) == ("1", "APBK0919", 500)
    assert error.msg1 == "주문가능금액을 초과 했습니다"
    assert error.tr_id == "TTTC0012U"
    assert route.call_count == 1


async def test_gateway_error_on_inquiry_is_retried(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.get(REAL_URL + PRICE_PATH).mock(side_effect=[
        refused("OPSQ0002", "없는 서비스 코드 입니다"),
        httpx.Response(502, text="<html>bad gateway</html>"),
        ok({"stck_prpr": "5"}),
    ])
    quote = await client.price(creds(), "005930")
    assert quote.price == 5
    assert route.call_count == 3


async def test_server_error_on_inquiry_gives_up_after_bounded_retries(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.get(REAL_URL + PRICE_PATH).mock(return_value=httpx.Response(503))
    with pytest.raises(KisServerError):
        await client.price(creds(), "005930")
    assert route.call_count == 3


# -- order safety -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [httpx.ReadTimeout("timed out"), httpx.ReadError("reset"),
     httpx.RemoteProtocolError("closed"), httpx.WriteTimeout("slow")],
)
async def test_no_answer_to_an_order_is_unknown_and_never_resent(
    router: respx.MockRouter, client: KisClient, error: Exception
) -> None:
    route = router.post(REAL_URL + ORDER_PATH).mock(side_effect=error)
    order = OrderRequest("005930", Side.BUY, 1)
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client.place_order(creds(), ACCOUNT, order)
    assert route.call_count == 1
    assert caught.value.order == order
    assert caught.value.tr_id == "TTTC0012U"


async def test_no_answer_to_a_cancel_is_unknown(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.post(REAL_URL + REVISE_CANCEL_PATH).mock(
        side_effect=httpx.ReadTimeout("timed out")
    )
    with pytest.raises(OrderOutcomeUnknown) as caught:
        await client.cancel_order(creds(), ACCOUNT, branch="1", order_no="42")
    assert route.call_count == 1
    assert caught.value.original_order_no == "42"


@pytest.mark.parametrize("status", [502, 408, 429])
async def test_non_kis_answer_to_an_order_is_unknown(
    router: respx.MockRouter, client: KisClient, status: int
) -> None:
    """Any status without a KIS body (a proxy's page) leaves the order's fate open."""
    route = router.post(REAL_URL + ORDER_PATH).mock(
        return_value=httpx.Response(status, text="<html>proxy says no</html>")
    )
    with pytest.raises(OrderOutcomeUnknown):
        await client.place_order(creds(), ACCOUNT, OrderRequest("005930", Side.BUY, 1))
    assert route.call_count == 1


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"),
              httpx.PoolTimeout("busy")]
)
async def test_connect_failure_on_an_order_is_a_transport_error_without_retry(
    router: respx.MockRouter, client: KisClient, error: Exception
) -> None:
    route = router.post(REAL_URL + ORDER_PATH).mock(side_effect=error)
    with pytest.raises(KisTransportError) as caught:
        await client.place_order(creds(), ACCOUNT, OrderRequest("005930", Side.BUY, 1))
    assert not isinstance(caught.value, OrderOutcomeUnknown)
    assert route.call_count == 1


async def test_transport_errors_on_inquiries_are_retried_bounded(
    router: respx.MockRouter, client: KisClient
) -> None:
    route = router.get(REAL_URL + PRICE_PATH).mock(side_effect=[
        httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), ok({"stck_prpr": "9"}),
    ])
    assert (await client.price(creds(), "005930")).price == 9
    assert route.call_count == 3
    route.mock(side_effect=httpx.ReadTimeout("slow"))
    route.reset()
    with pytest.raises(KisTransportError):
        await client.price(creds(), "005930")
    assert route.call_count == 3


# -- odds and ends ----------------------------------------------------------------------


async def test_observer_sees_tr_id_latency_and_code(
    router: respx.MockRouter, clock: FakeTime
) -> None:
    seen: list[tuple[str, float, str | None]] = []
    router.get(REAL_URL + PRICE_PATH).mock(side_effect=[
        refused("EGW00201"), ok({"stck_prpr": "1"}), httpx.ConnectError("x"),
        httpx.ConnectError("x"), httpx.ConnectError("x"),
    ])
    async with httpx.AsyncClient() as http:
        client = KisClient(endpoints=ENDPOINTS, http=http, token_store=MemoryTokenStore(),
                           clock=clock.monotonic, sleep=clock.sleep, now=clock.now,
                           on_response=lambda *args: seen.append(args))
        await client.price(creds(), "005930")
        with pytest.raises(KisTransportError):
            await client.price(creds(), "005930")
    assert [(tr, code) for tr, _, code in seen] == [
        ("FHKST01010100", "EGW00201"), ("FHKST01010100", "APBK0013"),
        ("FHKST01010100", None), ("FHKST01010100", None), ("FHKST01010100", None),
    ]
    assert all(seconds >= 0 for _, seconds, _ in seen)


async def test_default_http_client_has_timeouts_and_pooling() -> None:
    http = default_http_client(7.0)
    try:
        assert http.timeout.read == 7.0
        assert http.timeout.connect == 5.0
    finally:
        await http.aclose()


async def test_unreadable_success_is_a_server_error(
    router: respx.MockRouter, client: KisClient
) -> None:
    router.get(REAL_URL + PRICE_PATH).mock(return_value=ok({"stck_prpr": "n/a"}))
    with pytest.raises(KisServerError, match="unreadable"):
        await client.price(creds(), "005930")
