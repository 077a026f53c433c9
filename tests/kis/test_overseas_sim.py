"""US stocks end to end in `kis/`: the real KIS client and the US market against the
simulator over loopback, REST and WebSocket (KIS.md section 13)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import httpx
import pytest

from kis.client import KisClient, default_http_client
from kis.env import OVERSEAS_TR_IDS, TR_IDS, Endpoints, Environment
from kis.errors import KisApiError
from kis.fillnotice import FillNotice, NoticeKind
from kis.markets import Instrument, default_markets
from kis.markets.us import NEW_YORK, tick_size
from kis.models import (
    Account,
    AppCredentials,
    OrderRequest,
    OrderType,
    OverseasOrderRequest,
    Side,
)
from kis.overseas import price_params
from kis.secret import Secret
from kis.sim import KisSimulator, SimAccount, demo_account, demo_real_account
from kis.tokenstore import MemoryTokenStore
from kis.ws import FillNoticeConnection, Subscription

PAPER, REAL = Environment.PAPER, Environment.REAL
ENVS = pytest.mark.parametrize("env", [PAPER, REAL], ids=["paper", "real"])
AAPL = Instrument("US", "AAPL", "NASD")
KO = Instrument("US", "KO", "NYSE")
SPY = Instrument("US", "SPY", "AMEX")
BOUND = 5.0
MARKETS = default_markets()
US = MARKETS.get("US")


@dataclass
class Rig:
    sim: KisSimulator
    kis: KisClient
    http: httpx.AsyncClient

    def account(self, env: Environment) -> SimAccount:
        return next(a for a in self.sim.accounts if a.env is env)

    def creds(self, env: Environment) -> AppCredentials:
        acc = self.account(env)
        return AppCredentials(acc.app_key, Secret(acc.app_secret), env)

    def acct(self, env: Environment) -> Account:
        acc = self.account(env)
        return Account(acc.cano, acc.product_code)

    def bodies(self, endpoint: str) -> list[tuple[str, int, str]]:
        return [(r.tr_id, r.status, r.msg_cd) for r in self.sim.requests
                if r.endpoint == endpoint]


@asynccontextmanager
async def rig(**options: object) -> AsyncIterator[Rig]:
    sim = KisSimulator(rate_limits={PAPER: 1000, REAL: 1000}, **options)  # type: ignore[arg-type]
    await sim.start()
    http = default_http_client(5.0)
    endpoints = Endpoints(rest={env: sim.rest_url(env) for env in Environment},
                          ws={env: sim.ws_url(env) for env in Environment})
    kis = KisClient(endpoints=endpoints, http=http, token_store=MemoryTokenStore(),
                    rate_limits={PAPER: 1000.0, REAL: 1000.0})
    try:
        yield Rig(sim, kis, http)
    finally:
        await http.aclose()
        await sim.stop()


# --- orders: TR ids per environment --------------------------------------------------------

EXPECTED_TR = {
    (PAPER, Side.BUY): "VTTT1002U",
    (PAPER, Side.SELL): "VTTT1001U",  # not VTTT1006U
    (REAL, Side.BUY): "TTTT1002U",
    (REAL, Side.SELL): "TTTT1006U",
}


@ENVS
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_each_tr_id_per_environment_and_side(env: Environment, side: Side) -> None:
    async with rig() as r:
        plan = US.plan(env, AAPL, side, 2, OrderType.LIMIT, Decimal("190.129"), None)
        ack = await US.place(r.kis, r.creds(env), r.acct(env), plan)
        order = r.sim.us.order(ack.order_no)
        assert order is not None
        assert order.tr_id == EXPECTED_TR[(env, side)]
        assert order.body["OVRS_EXCG_CD"] == "NASD" and order.body["PDNO"] == "AAPL"
        # limit rounding: down for a buy, up for a sell, on the cent
        assert order.body["OVRS_ORD_UNPR"] == ("190.12" if side is Side.BUY else "190.13")
        assert order.body["ORD_DVSN"] == "00"
        assert order.body["SLL_TYPE"] == ("00" if side is Side.SELL else "")
        assert set(order.body) == {"CANO", "ACNT_PRDT_CD", "OVRS_EXCG_CD", "PDNO", "ORD_QTY",
                                   "OVRS_ORD_UNPR", "CTAC_TLNO", "MGCO_APTM_ODNO",
                                   "SLL_TYPE", "ORD_SVR_DVSN_CD", "ORD_DVSN"}


def test_tr_map_is_written_out_not_derived() -> None:
    assert OVERSEAS_TR_IDS[PAPER].sell == "VTTT1001U"
    assert OVERSEAS_TR_IDS[REAL].sell == "TTTT1006U"
    assert OVERSEAS_TR_IDS[PAPER].fill_notice == "H0GSCNI9"
    assert OVERSEAS_TR_IDS[REAL].fill_notice == "H0GSCNI0"


async def test_sub_dollar_limit_keeps_four_decimals() -> None:
    async with rig() as r:
        sndl = Instrument("US", "SNDL", "NASD")
        plan = US.plan(PAPER, sndl, Side.BUY, 100, OrderType.LIMIT, Decimal("0.51239"), None)
        ack = await US.place(r.kis, r.creds(PAPER), r.acct(PAPER), plan)
        order = r.sim.us.order(ack.order_no)
        assert order is not None and order.body["OVRS_ORD_UNPR"] == "0.5123"


@ENVS
@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
async def test_marketable_limit_within_the_slippage_fills(env: Environment, side: Side) -> None:
    async with rig() as r:
        r.sim.set_us_price("AAPL", Decimal("201.37"))
        last = (await US.quote(r.kis, r.creds(env), AAPL)).price
        assert last == Decimal("201.37")
        plan = US.plan(env, AAPL, side, 2, OrderType.MARKET, None, last)
        assert plan.marketable
        ack = await US.place(r.kis, r.creds(env), r.acct(env), plan)
        order = r.sim.us.order(ack.order_no)
        assert order is not None
        sent = Decimal(order.body["OVRS_ORD_UNPR"])
        assert sent % tick_size(sent) == 0
        move = (sent - last) / last
        assert 0 < move <= Decimal("0.005") if side is Side.BUY else -Decimal("0.005") <= move < 0
        await r.sim.wait_for(lambda: order.remaining == 0, BOUND)
        assert order.avg_price == last  # filled at the market, not at the limit


# --- what KIS refuses, the simulator refuses ------------------------------------------------


async def raw_order(r: Rig, env: Environment, tr_id: str, **fields: str) -> httpx.Response:
    acc = r.account(env)
    token = await r.kis.access_token(r.creds(env))
    body = {"CANO": acc.cano, "ACNT_PRDT_CD": acc.product_code, "OVRS_EXCG_CD": "NASD",
            "PDNO": "AAPL", "ORD_QTY": "1", "OVRS_ORD_UNPR": "190.12", "CTAC_TLNO": "",
            "MGCO_APTM_ODNO": "", "SLL_TYPE": "", "ORD_SVR_DVSN_CD": "0", "ORD_DVSN": "00",
            **fields}
    headers = {"content-type": "application/json; charset=utf-8",
               "authorization": f"Bearer {token.reveal()}", "appkey": acc.app_key,
               "appsecret": acc.app_secret, "tr_id": tr_id, "custtype": "P"}
    return await r.http.post(r.sim.rest_url(env) + "/uapi/overseas-stock/v1/trading/order",
                             json=body, headers=headers)


@pytest.mark.parametrize(
    ("env", "tr_id", "fields", "msg_cd"),
    [
        (PAPER, "TTTT1002U", {}, "EGW02006"),  # a real TR in paper
        (REAL, "VTTT1002U", {}, "EGW02004"),  # a paper TR in real
        (PAPER, "VTTT1006U", {"SLL_TYPE": "00"}, "OPSQ0002"),  # the letter-swapped sell
        (PAPER, "VTTT1002U", {"ORD_DVSN": "32"}, "90000000"),  # LOO in paper
        (PAPER, "VTTT1002U", {"OVRS_EXCG_CD": "NAS"}, "OPSQ2001"),  # price code in an order
        (PAPER, "VTTT1002U", {"OVRS_EXCG_CD": "NYSE"}, "APBK0656"),  # AAPL is on NASDAQ
        (PAPER, "VTTT1002U", {"OVRS_ORD_UNPR": "190.125"}, "APBK0506"),  # off the tick
        (REAL, "TTTT1002U", {"ORD_DVSN": "31"}, "OPSQ2001"),  # MOO is for sells only
    ],
)
async def test_simulator_refuses_what_kis_refuses(
    env: Environment, tr_id: str, fields: dict[str, str], msg_cd: str
) -> None:
    async with rig() as r:
        answer = await raw_order(r, env, tr_id, **fields)
        assert answer.json()["msg_cd"] == msg_cd
        assert r.sim.us_orders == []


async def test_real_on_close_orders_accepted() -> None:
    async with rig() as r:
        moc = US.plan(REAL, AAPL, Side.SELL, 1, OrderType.MOC, None, None)
        loc = US.plan(REAL, AAPL, Side.BUY, 1, OrderType.LOC, Decimal("150"), None)
        for plan, dvsn, price in ((moc, "33", "0"), (loc, "34", "150")):
            ack = await US.place(r.kis, r.creds(REAL), r.acct(REAL), plan)
            order = r.sim.us.order(ack.order_no)
            assert order is not None
            assert (order.body["ORD_DVSN"], order.body["OVRS_ORD_UNPR"]) == (dvsn, price)


async def test_price_inquiry_takes_the_price_exchange_code() -> None:
    async with rig() as r:
        for inst, excd in ((AAPL, "NAS"), (KO, "NYS"), (SPY, "AMS")):
            assert price_params(inst.exchange, inst.symbol)["EXCD"] == excd
            quote = await r.kis.overseas_price(r.creds(PAPER), inst.exchange, inst.symbol)
            assert quote.last == r.sim.us_price(inst.symbol)
            assert quote.decimals == 4
        acc = r.account(PAPER)
        token = await r.kis.access_token(r.creds(PAPER))
        wrong = await r.http.get(
            r.sim.rest_url(PAPER) + "/uapi/overseas-price/v1/quotations/price",
            params={"AUTH": "", "EXCD": "NASD", "SYMB": "AAPL"},
            headers={"authorization": f"Bearer {token.reveal()}", "appkey": acc.app_key,
                     "appsecret": acc.app_secret, "tr_id": "HHDFS00000300", "custtype": "P"},
        )
        assert wrong.json()["msg1"].endswith("INVALID_CHECK_EXCD")


async def test_unknown_symbol_is_a_price_of_zero_not_a_crash() -> None:
    async with rig() as r:
        quote = await r.kis.overseas_price(r.creds(PAPER), "NASD", "ZZZZ")
        assert quote.last == 0


# --- inquiries ---------------------------------------------------------------------------------


def rich(env: Environment) -> SimAccount:
    account = demo_account() if env is PAPER else demo_real_account()
    account.us_holdings = {"AAPL": 5, "TSLA": 3, "KO": 7, "BRK.B": 1, "SPY": 2}
    return account


@ENVS
async def test_balance_pages_and_reads_every_us_exchange(env: Environment) -> None:
    other = demo_real_account() if env is PAPER else demo_account()
    async with rig(accounts=[rich(env), other], balance_page_rows={PAPER: 1, REAL: 2}) as r:
        balance = await r.kis.overseas_balance(r.creds(env), r.acct(env))
        held = {h.symbol: (h.quantity, h.sellable, h.exchange) for h in balance.holdings}
        assert held == {"AAPL": (5, 5, "NASD"), "TSLA": (3, 3, "NASD"), "KO": (7, 7, "NYSE"),
                        "BRK.B": (1, 1, "NYSE"), "SPY": (2, 2, "AMEX")}
        asked = [r_.tr_cont for r_ in r.sim.requests if r_.endpoint == "ovrs_balance"]
        assert "N" in asked  # continuation pages were followed
        tr_ids = {r_.tr_id for r_ in r.sim.requests if r_.endpoint == "ovrs_balance"}
        assert tr_ids == {OVERSEAS_TR_IDS[env].balance}
        position = await US.held(r.kis, r.creds(env), r.acct(env), KO)
        assert position is not None and (position.quantity, position.sellable) == (7, 7)


@ENVS
async def test_executions_page_and_find_the_order(env: Environment) -> None:
    async with rig(executions_page_rows={PAPER: 2, REAL: 2}) as r:
        acks = []
        for _ in range(5):
            plan = US.plan(env, AAPL, Side.BUY, 1, OrderType.LIMIT, Decimal("150"), None)
            acks.append(await US.place(r.kis, r.creds(env), r.acct(env), plan))
        day = US.hours.trading_day(datetime.fromtimestamp(r.sim.now(), NEW_YORK))
        rows = await US.executions(r.kis, r.creds(env), r.acct(env), day, AAPL)
        assert sorted(row.order_no for row in rows) == sorted(a.order_no for a in acks)
        one = await US.executions(r.kis, r.creds(env), r.acct(env), day, AAPL,
                                  acks[3].order_no)
        assert [row.order_no for row in one] == [acks[3].order_no]
        assert one[0].order_price == Decimal("150") and one[0].remaining_qty == 1
        continued = [q for q in r.sim.requests if q.endpoint == "ovrs_ccnl" and q.tr_cont == "N"]
        assert len(continued) >= 2


async def test_buying_power_in_usd() -> None:
    async with rig() as r:
        power = await r.kis.overseas_buying_power(
            r.creds(PAPER), r.acct(PAPER), exchange="NASD", symbol="AAPL",
            price=Decimal("190.12"),
        )
        assert power.amount == Decimal("10000.00")
        assert power.quantity == int(Decimal("10000") // Decimal("190.12"))


async def test_cancel_releases_the_order() -> None:
    async with rig() as r:
        plan = US.plan(PAPER, AAPL, Side.BUY, 4, OrderType.LIMIT, Decimal("150"), None)
        ack = await US.place(r.kis, r.creds(PAPER), r.acct(PAPER), plan)
        await US.cancel(r.kis, r.creds(PAPER), r.acct(PAPER), AAPL, order_no=ack.order_no,
                        branch=ack.branch, quantity=4)
        order = r.sim.us.order(ack.order_no)
        assert order is not None and order.remaining == 0 and order.cancelled_qty == 4
        assert r.account(PAPER).usd_reserved == 0
        assert r.bodies("ovrs_rvsecncl")[0][0] == "VTTT1004U"
        with pytest.raises(KisApiError) as again:
            await US.cancel(r.kis, r.creds(PAPER), r.acct(PAPER), AAPL,
                            order_no=ack.order_no, branch=ack.branch, quantity=1)
        assert again.value.msg_cd == "APBK0918"


async def test_paper_execution_filters_are_refused_by_the_simulator() -> None:
    async with rig() as r:
        request = OverseasOrderRequest("AAPL", "NASD", Side.BUY, 1, "00", Decimal("150"))
        await r.kis.place_overseas_order(r.creds(PAPER), r.acct(PAPER), request)
        # The client leaves PDNO empty in paper (KIS.md 13); a symbol there is refused.
        acc = r.account(PAPER)
        token = await r.kis.access_token(r.creds(PAPER))
        answer = await r.http.get(
            r.sim.rest_url(PAPER) + "/uapi/overseas-stock/v1/trading/inquire-ccnl",
            params={"CANO": acc.cano, "ACNT_PRDT_CD": "01", "PDNO": "AAPL",
                    "ORD_STRT_DT": "20250101", "ORD_END_DT": "20991231",
                    "SLL_BUY_DVSN": "00", "CCLD_NCCS_DVSN": "00", "OVRS_EXCG_CD": "",
                    "SORT_SQN": "DS", "ORD_DT": "", "ORD_GNO_BRNO": "", "ODNO": "",
                    "CTX_AREA_NK200": "", "CTX_AREA_FK200": ""},
            headers={"authorization": f"Bearer {token.reveal()}", "appkey": acc.app_key,
                     "appsecret": acc.app_secret, "tr_id": "VTTS3035R", "custtype": "P"},
        )
        assert answer.json()["msg1"].endswith("INVALID_CHECK_PDNO")
        rows = await r.kis.overseas_executions(
            r.creds(PAPER), r.acct(PAPER), start=datetime(2025, 1, 1).date(),
            end=datetime(2099, 12, 31).date(), symbol="AAPL", exchange="NASD",
        )
        assert len(rows) == 1


# --- fill notices of both markets on one session -------------------------------------------------


@ENVS
async def test_both_markets_notices_on_one_session(env: Environment) -> None:
    async with rig() as r:
        account = r.account(env)
        notices: asyncio.Queue[FillNotice] = asyncio.Queue()

        async def on_notice(notice: FillNotice) -> None:
            await notices.put(notice)

        async def approval() -> Secret:
            return await r.kis.approval_key(r.creds(env))

        subscriptions = [Subscription(tr, account.hts_id, decode)
                         for tr, decode in MARKETS.fill_notices(env)]
        assert [s.tr_id for s in subscriptions] == [
            TR_IDS[env].fill_notice, OVERSEAS_TR_IDS[env].fill_notice]
        connection = FillNoticeConnection(
            url=r.sim.ws_url(env) + "/tryitout", subscriptions=subscriptions,
            approval_key=approval, on_notice=on_notice, name="both",
        )
        connection.start()
        try:
            assert (await connection.wait_ready(BOUND)).ready
            assert r.sim.ws_connection_count() == 1  # one session per app key
            r.sim.set_us_price("AAPL", Decimal("148.01"))
            plan = US.plan(env, AAPL, Side.BUY, 3, OrderType.LIMIT, Decimal("150"), None)
            ack = await US.place(r.kis, r.creds(env), r.acct(env), plan)
            accepted = await asyncio.wait_for(notices.get(), BOUND)
            filled = await asyncio.wait_for(notices.get(), BOUND)
            assert accepted.kind is NoticeKind.ACCEPTED and accepted.market == "US"
            assert (accepted.quantity, accepted.order_qty) == (3, 3)
            assert accepted.order_price == Decimal("150")
            assert filled.kind is NoticeKind.FILLED
            assert (filled.order_no, filled.symbol, filled.exchange) == (
                ack.order_no, "AAPL", "NASD")
            assert filled.quantity == 3 and filled.price == Decimal("148.01")
            sent = [n for n in r.sim.notices if n.tr_id == OVERSEAS_TR_IDS[env].fill_notice]
            assert sent[-1].fields[9] == "001480100"  # 4 implied decimals on the wire
            # the domestic TR still arrives on the same session
            await r.kis.place_order(r.creds(env), r.acct(env), OrderRequest("005930", Side.BUY, 1))
            domestic = await asyncio.wait_for(notices.get(), BOUND)
            assert domestic.market == "KRX" and domestic.symbol == "005930"
        finally:
            await connection.stop()
