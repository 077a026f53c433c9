"""The KIS side of SPEC section 15 against the simulator over loopback: realised P&L and
reservation orders (REAL only, refused in paper as KIS refuses them), every page of a
listing, the markets' portfolios, the entry window, and revoke taking any 2xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import respx

from kis.client import KisClient
from kis.env import KST, Endpoints, Environment
from kis.errors import KisApiError, KisServerError, OrderOutcomeUnknown
from kis.markets import default_markets
from kis.models import Account, AppCredentials, OrderRequest, ReservationRequest, Side
from kis.reservations import in_entry_window
from kis.secret import Secret
from kis.sim import KisSimulator, SimAccount, demo_account
from kis.sim.accounts import demo_real_account
from kis.tokenstore import MemoryTokenStore

REAL_BASE = "https://real.kis.test"


@dataclass
class Env:
    sim: KisSimulator
    kis: KisClient
    real: tuple[AppCredentials, Account]
    paper: tuple[AppCredentials, Account]


def _access(account: SimAccount) -> tuple[AppCredentials, Account]:
    return (AppCredentials(account.app_key, Secret(account.app_secret), account.env),
            Account(account.cano, account.product_code))


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with (
        KisSimulator(rate_limits={Environment.PAPER: 1000, Environment.REAL: 1000},
                     balance_page_rows={Environment.REAL: 1}) as sim,
        httpx.AsyncClient() as http,
    ):
        kis = KisClient(
            endpoints=Endpoints(rest={e: sim.rest_url(e) for e in Environment}, ws={}),
            http=http, token_store=MemoryTokenStore(),
        )
        yield Env(sim, kis, _access(demo_real_account()), _access(demo_account()))


async def test_realised_pnl_is_kis_figure_over_every_page(env: Env) -> None:
    creds, account = env.real
    env.sim.account(creds.app_key).holdings["000660"] = 2  # two holdings: two pages
    await env.kis.place_order(creds, account, OrderRequest("005930", Side.SELL, 4))
    await env.sim.wait_for(lambda: env.sim.orders[0].filled_qty == 4)
    env.sim.set_price("005930", 72_000)
    await env.kis.place_order(creds, account, OrderRequest("005930", Side.SELL, 2))
    await env.sim.wait_for(lambda: env.sim.orders[1].filled_qty == 2)

    pnl = await env.kis.realised_pnl(creds, account)

    # (72,000 − 71,000) × 2, on the 426,000 the six sold shares cost
    assert pnl.total == 2_000 and pnl.rate == Decimal("0.47")
    pages = [r.tr_cont for r in env.sim.requests if r.endpoint == "rlz_pl"]
    assert pages == ["", "N"]


async def test_paper_has_no_realised_pnl_nor_reservations(env: Env) -> None:
    creds, account = env.paper
    with pytest.raises(ValueError, match="paper"):
        await env.kis.realised_pnl(creds, account)
    with pytest.raises(ValueError, match="paper"):
        await env.kis.place_reservation(creds, account,
                                        ReservationRequest("005930", Side.BUY, 1, "01"))
    assert not default_markets().get("KRX").reservable(Environment.PAPER)
    assert not any(r.endpoint in ("rlz_pl", "resv") for r in env.sim.requests)


async def test_a_paper_key_calling_the_real_only_tr_is_refused_as_kis_does(env: Env) -> None:
    creds, account = env.paper
    real_creds = AppCredentials(creds.app_key, creds.app_secret, Environment.REAL)
    with pytest.raises(KisApiError):  # the paper key does not work on the real host
        await env.kis.realised_pnl(real_creds, account)


async def test_reservation_entered_listed_processed_and_cancelled(env: Env) -> None:
    creds, account = env.real
    first = await env.kis.place_reservation(creds, account,
                                            ReservationRequest("005930", Side.BUY, 2, "01"))
    second = await env.kis.place_reservation(
        creds, account, ReservationRequest("035720", Side.BUY, 1, "00", price=41_000)
    )
    body = env.sim.reservations.items[1].body
    assert (body["ORD_DVSN_CD"], body["ORD_UNPR"], body["SLL_BUY_DVSN_CD"]) == (
        "00", "41000", "02")
    today = datetime.now(KST).date()
    listed = await env.kis.reservations(creds, account, start=today,
                                        end=today + timedelta(days=10))
    assert [(r.seq, r.symbol, r.quantity, r.order_no) for r in listed] == [
        (first, "005930", 2, ""), (second, "035720", 1, "")]

    await env.kis.cancel_reservation(creds, account, seq=second,
                                     order_date=listed[1].order_date)
    env.sim.process_reservations()
    await env.sim.wait_for(lambda: bool(env.sim.orders) and env.sim.orders[0].filled_qty == 2)
    listed = await env.kis.reservations(creds, account, start=today,
                                        end=today + timedelta(days=10))
    done, cancelled = listed
    assert done.order_no == env.sim.orders[0].odno and done.filled_qty == 2
    assert done.filled_amount == 142_000
    assert cancelled.cancelled and not cancelled.order_no
    assert len(env.sim.orders) == 1


async def test_reservation_refusals_are_kis_answers(env: Env) -> None:
    creds, account = env.real
    env.sim.reservations.window_open = False
    with pytest.raises(KisApiError) as refused:
        await env.kis.place_reservation(creds, account,
                                        ReservationRequest("005930", Side.BUY, 1, "01"))
    assert refused.value.msg_cd == "APBK1680"
    env.sim.reservations.window_open = True
    env.sim.faults.add("resv", "timeout_after_accept", then="drop")
    with pytest.raises(OrderOutcomeUnknown):  # never re-sent: reconcile from the list
        await env.kis.place_reservation(creds, account,
                                        ReservationRequest("005930", Side.BUY, 1, "01"))
    assert len(env.sim.reservations.items) == 1


async def test_markets_portfolios_read_every_page(env: Env) -> None:
    creds, account = env.real
    env.sim.account(creds.app_key).holdings["000660"] = 2
    krx, us = default_markets()
    book = await krx.portfolio(env.kis, creds, account)
    assert [(h.symbol, h.quantity, h.avg_price) for h in book.holdings] == [
        ("005930", 10, 71_000), ("000660", 2, 185_000)]
    assert book.cash == 10_000_000 and book.buying_power == 10_000_000
    us_book = await us.portfolio(env.kis, creds, account)
    assert [(h.symbol, h.exchange, h.quantity) for h in us_book.holdings] == [
        ("AAPL", "NASD", 5)]
    assert us_book.buying_power == 10_000 and us_book.cash is None


@pytest.mark.parametrize(
    ("kst", "trading_day", "open_"),
    [
        ("15:39", True, False), ("15:40", True, True), ("23:39", True, True),
        ("23:45", True, False), ("00:05", True, False), ("00:10", True, True),
        ("07:29", True, True), ("07:30", True, False), ("12:00", True, False),
        ("12:00", False, True), ("23:50", False, False),
    ],
)
def test_reservation_entry_window(kst: str, trading_day: bool, open_: bool) -> None:
    hour, minute = map(int, kst.split(":"))
    moment = datetime(2026, 1, 5, hour, minute, tzinfo=KST).astimezone(UTC)
    assert in_entry_window(moment, trading_day) is open_


@pytest.mark.parametrize(("status", "done"), [(200, True), (204, True), (500, False)])
@respx.mock
async def test_revoke_takes_any_2xx_as_done(status: int, done: bool) -> None:
    store = MemoryTokenStore()
    async with httpx.AsyncClient() as http:
        kis = KisClient(endpoints=Endpoints(rest={Environment.REAL: REAL_BASE}, ws={}),
                        http=http, token_store=store)
        creds = AppCredentials("PSkey", Secret("secret"), Environment.REAL)
        respx.post(REAL_BASE + "/oauth2/tokenP").respond(json={
            "access_token": "tok-1", "token_type": "Bearer", "expires_in": 86400,
            "access_token_token_expired": "2099-01-01 00:00:00"})
        revoke = respx.post(REAL_BASE + "/oauth2/revokeP").respond(status, text="not json")
        await kis.access_token(creds)
        if done:
            await kis.revoke_token(creds)  # KIS documents no answer format: 2xx is done
        else:
            with pytest.raises(KisServerError):
                await kis.revoke_token(creds)
        assert revoke.call_count == 1
