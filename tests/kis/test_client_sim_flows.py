"""The real KIS REST client against the running KIS simulator, over loopback HTTP.

The client and the simulator were written independently; these tests make them talk
(tokens, approval key, orders, inquiries with paging) and check that what one sends
is what the other records. Time is virtual: the simulator's `ManualClock` is also the
client's clock, `now` and `sleep`, so the one-token-a-minute rule is respected without
waiting for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from kis.client import KisClient, default_http_client
from kis.env import Endpoints, Environment
from kis.errors import KisApiError, KisAuthError, KisServerError
from kis.models import Account, AppCredentials, OrderRequest, OrderType, Side
from kis.secret import Secret
from kis.sim import (
    DEFAULT_INSTRUMENTS,
    Instrument,
    KisSimulator,
    ManualClock,
    OrderStatus,
    SimAccount,
    generate_accounts,
)
from kis.sim.clock import kst
from kis.ticks import Rounding, round_to_tick
from kis.tokenstore import CredentialKind, MemoryTokenStore, TokenStore

PAPER = Environment.PAPER
REAL = Environment.REAL
ENVS = pytest.mark.parametrize("env", [PAPER, REAL], ids=["paper", "real"])
SAMSUNG = "005930"  # base 71,000: tick 100, limits 49,700..92,300
HIGH_LIMITS = {PAPER: 1000, REAL: 1000}  # these tests are not about the rate limit
# What the simulator records as msg_cd of a successful answer ("" on /oauth2).
SUCCESS_CODES = frozenset(
    {"", "20310000", "KIOK0000", "APBK0013", "40600000", "40610000", "40660000"}
)
TR = {
    PAPER: {"buy": "VTTC0012U", "sell": "VTTC0011U", "rvsecncl": "VTTC0013U",
            "balance": "VTTC8434R", "psbl": "VTTC8908R", "ccld": "VTTC0081R"},
    REAL: {"buy": "TTTC0012U", "sell": "TTTC0011U", "rvsecncl": "TTTC0013U",
           "balance": "TTTC8434R", "psbl": "TTTC8908R", "ccld": "TTTC0081R"},
}


@dataclass
class VirtualTime:
    """The simulator's manual clock, seen by the client as monotonic time, `now` and sleep."""

    clock: ManualClock
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.clock.now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now, UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.clock.now + max(seconds, 0.0)
        await asyncio.sleep(0)
        self.clock.now = max(self.clock.now, target)  # concurrent sleepers never add up


@dataclass
class Rig:
    sim: KisSimulator
    time: VirtualTime
    store: TokenStore
    clients: list[KisClient]
    new_client: Callable[[], KisClient]

    @property
    def client(self) -> KisClient:
        return self.clients[0]

    def account_of(self, env: Environment) -> SimAccount:
        return next(a for a in self.sim.accounts if a.env is env)

    def requests(self, endpoint: str) -> list[str]:
        """msg_cd (or "ok") of each recorded request to `endpoint`, in order."""
        return [
            "ok" if r.msg_cd in SUCCESS_CODES else r.msg_cd
            for r in self.sim.requests
            if r.endpoint == endpoint
        ]


def creds_of(account: SimAccount) -> AppCredentials:
    return AppCredentials(app_key=account.app_key, app_secret=Secret(account.app_secret),
                          env=account.env)


def account_of(account: SimAccount) -> Account:
    return Account(cano=account.cano, product_code=account.product_code)


@asynccontextmanager
async def rig(
    *,
    accounts: list[SimAccount] | None = None,
    instruments: tuple[Instrument, ...] | None = None,
    balance_page_rows: dict[Environment, int] | None = None,
    executions_page_rows: dict[Environment, int] | None = None,
) -> AsyncIterator[Rig]:
    clock = ManualClock()
    vt = VirtualTime(clock)
    sim = KisSimulator(accounts, clock=clock, rate_limits=dict(HIGH_LIMITS),
                       instruments=instruments, balance_page_rows=balance_page_rows,
                       executions_page_rows=executions_page_rows)
    await sim.start()
    store = MemoryTokenStore()
    http = default_http_client(2.0)
    endpoints = Endpoints(rest={env: sim.rest_url(env) for env in Environment},
                          ws={env: sim.ws_url(env) for env in Environment})

    def new_client() -> KisClient:
        made = KisClient(endpoints=endpoints, http=http, token_store=store,
                         rate_limits={PAPER: 1000.0, REAL: 1000.0},
                         clock=vt.monotonic, sleep=vt.sleep, now=vt.now)
        state.clients.append(made)
        return made

    state = Rig(sim=sim, time=vt, store=store, clients=[], new_client=new_client)
    new_client()
    try:
        yield state
    finally:
        await http.aclose()
        await sim.stop()


# -- tokens and approval key --------------------------------------------------------------


@ENVS
async def test_thirty_concurrent_calls_share_one_token(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        quotes = await asyncio.gather(
            *(r.client.price(creds_of(acc), SAMSUNG) for _ in range(30))
        )
        assert {q.price for q in quotes} == {71_000}
        assert r.sim.token_issuances == {acc.app_key: 1}
        assert r.requests("token") == ["ok"]
        assert r.requests("price") == ["ok"] * 30


@ENVS
async def test_stored_token_is_reused_by_a_second_client(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        await r.client.price(creds_of(acc), SAMSUNG)
        stored = await r.store.load(CredentialKind.ACCESS_TOKEN, acc.app_key, env)
        assert stored is not None
        # access_token_token_expired (KST) read right: one day after issuance.
        assert stored.expires_at == r.time.now() + timedelta(days=1)
        r.time.clock.advance(3600)  # later, e.g. after a restart
        second = r.new_client()
        await second.price(creds_of(acc), SAMSUNG)
        assert r.sim.token_issuances == {acc.app_key: 1}
        assert r.requests("token") == ["ok"]


@ENVS
async def test_expired_token_is_refreshed_once_and_the_call_succeeds(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        await r.client.price(creds_of(acc), SAMSUNG)
        r.time.clock.advance(10)
        assert r.sim.expire_tokens(acc.app_key) == 1

        quote = await r.client.price(creds_of(acc), SAMSUNG)

        assert quote.price == 71_000
        assert r.sim.token_issuances == {acc.app_key: 2}
        assert r.requests("price") == ["ok", "EGW00123", "ok"]
        issued = [q.time for q in r.sim.requests if q.endpoint == "token"]
        assert len(issued) == 2
        # The second issuance waited out KIS's minute (virtually), never hit EGW00133.
        assert issued[1] - issued[0] >= 60.0
        assert max(r.time.sleeps) == pytest.approx(50.0, abs=1.0)


@ENVS
async def test_expired_token_long_after_issuance_is_refreshed_without_waiting(
    env: Environment,
) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        await r.client.price(creds_of(acc), SAMSUNG)
        r.time.clock.advance(7 * 3600)
        r.sim.expire_tokens(acc.app_key)
        await r.client.balance(creds_of(acc), account_of(acc))
        assert r.sim.token_issuances == {acc.app_key: 2}
        assert r.requests("balance") == ["EGW00123", "ok"]
        assert all(s < 1.0 for s in r.time.sleeps)


@ENVS
async def test_concurrent_calls_on_an_expired_token_share_one_refresh(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        await r.client.price(creds_of(acc), SAMSUNG)
        r.sim.expire_tokens(acc.app_key)

        quotes = await asyncio.gather(
            *(r.client.price(creds_of(acc), SAMSUNG) for _ in range(10))
        )

        assert len(quotes) == 10
        assert r.sim.token_issuances == {acc.app_key: 2}
        codes = r.requests("price")[1:]
        assert codes.count("ok") == 10
        assert set(codes) <= {"ok", "EGW00123"}


@ENVS
async def test_expired_token_on_an_order_places_it_exactly_once(env: Environment) -> None:
    # The gateway refuses the token before the request becomes an order (KIS.md 2/6).
    async with rig() as r:
        acc = r.account_of(env)
        await r.client.access_token(creds_of(acc))
        r.sim.expire_tokens(acc.app_key)
        ack = await r.client.place_order(creds_of(acc), account_of(acc),
                                         OrderRequest(SAMSUNG, Side.BUY, 1))
        assert r.requests("order") == ["EGW00123", "ok"]
        assert [o.odno for o in r.sim.orders] == [ack.order_no]


@ENVS
async def test_revoked_token_is_replaced_after_the_minute(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        first = await r.client.access_token(creds_of(acc))
        await r.client.revoke_token(creds_of(acc))
        assert r.requests("revoke") == ["ok"]
        assert await r.store.load(CredentialKind.ACCESS_TOKEN, acc.app_key, env) is None

        await r.client.price(creds_of(acc), SAMSUNG)
        second = await r.client.access_token(creds_of(acc))
        assert second.reveal() != first.reveal()  # KIS would hand back a live one
        assert r.sim.token_issuances == {acc.app_key: 2}
        assert r.requests("token") == ["ok", "ok"]
        assert r.requests("price") == ["ok"]


@pytest.mark.parametrize("key_env, url_env", [(PAPER, REAL), (REAL, PAPER)],
                         ids=["paper-key-real-url", "real-key-paper-url"])
async def test_key_of_the_other_environment_is_an_auth_error(
    key_env: Environment, url_env: Environment
) -> None:
    async with rig() as r:
        acc = r.account_of(key_env)
        wrong = AppCredentials(app_key=acc.app_key, app_secret=Secret(acc.app_secret),
                               env=url_env)
        with pytest.raises(KisAuthError) as caught:
            await r.client.price(wrong, SAMSUNG)
        assert caught.value.msg_cd == "EGW00103"
        assert caught.value.http_status == 403
        assert acc.app_secret not in str(caught.value)
        assert r.sim.token_issuances == {}
        assert r.requests("price") == []
        assert [q.env for q in r.sim.requests] == [url_env]


@ENVS
async def test_approval_key_is_issued_once_for_the_environment(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        first, second = await asyncio.gather(
            r.client.approval_key(creds_of(acc)), r.client.approval_key(creds_of(acc))
        )
        assert first.reveal() == second.reveal()
        assert r.sim.credentials.approval_owner(env, first.reveal()) == acc.app_key
        assert r.sim.credentials.approval_owner(env.other, first.reveal()) is None
        assert r.requests("approval") == ["ok"]
        assert r.sim.token_issuances == {}  # the approval key is not an access token


# -- orders ---------------------------------------------------------------------------------


def expected_body(acc: SimAccount, side: Side, qty: int, ord_dvsn: str, price: int) -> dict[
    str, str
]:
    return {
        "CANO": acc.cano,
        "ACNT_PRDT_CD": "01",
        "PDNO": SAMSUNG,
        "ORD_DVSN": ord_dvsn,
        "ORD_QTY": str(qty),
        "ORD_UNPR": str(price),
        "EXCG_ID_DVSN_CD": "KRX",
        "SLL_TYPE": "01" if side is Side.SELL else "",
        "CNDT_PRIC": "",
    }


@ENVS
async def test_market_buy_then_sell(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        creds, account = creds_of(acc), account_of(acc)

        ack = await r.client.place_order(creds, account, OrderRequest(SAMSUNG, Side.BUY, 3))
        order = r.sim.order(ack.order_no)
        assert order.tr_id == TR[env]["buy"]
        assert order.body == expected_body(acc, Side.BUY, 3, "01", 0)
        assert ack.branch == order.orgno and ack.time == order.time
        assert ack.msg_cd == ("APBK0013" if env is REAL else "40600000")
        await r.sim.wait_order_done(ack.order_no)
        assert order.status is OrderStatus.FILLED
        assert acc.holdings[SAMSUNG] == 13
        assert acc.cash == 10_000_000 - 3 * 71_000

        balance = await r.client.balance(creds, account)
        holding = balance.holding(SAMSUNG)
        assert holding is not None
        assert (holding.quantity, holding.sellable, holding.price) == (13, 13, 71_000)
        assert balance.cash == 10_000_000 - 3 * 71_000

        sell = await r.client.place_order(creds, account, OrderRequest(SAMSUNG, Side.SELL, 5))
        sold = await r.sim.wait_order_done(sell.order_no)
        assert sold.tr_id == TR[env]["sell"]
        assert sold.body == expected_body(acc, Side.SELL, 5, "01", 0)
        assert sold.status is OrderStatus.FILLED
        assert sell.order_no != ack.order_no
        assert acc.holdings[SAMSUNG] == 8
        assert acc.cash == 10_000_000 + 2 * 71_000
        assert r.requests("order") == ["ok", "ok"]
        assert [q.tr_id for q in r.sim.requests if q.endpoint == "order"] == [
            TR[env]["buy"], TR[env]["sell"]
        ]


@ENVS
async def test_limit_buy_at_a_tick_rounded_price_rests_then_fills(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        creds, account = creds_of(acc), account_of(acc)
        quote = await r.client.price(creds, SAMSUNG)
        wanted = quote.price - 50  # 70,950: between two ticks of 100
        price = round_to_tick(wanted, Rounding.DOWN, tick=quote.tick)
        assert price == 70_900

        ack = await r.client.place_order(
            creds, account, OrderRequest(SAMSUNG, Side.BUY, 2, OrderType.LIMIT, price)
        )
        order = r.sim.order(ack.order_no)
        assert order.body == expected_body(acc, Side.BUY, 2, "00", 70_900)
        assert order.status is OrderStatus.OPEN
        assert acc.reserved_cash == 2 * 70_900
        buyable = await r.client.buyable(creds, account, SAMSUNG, 70_900)
        assert buyable.amount == 10_000_000 - 2 * 70_900

        r.sim.set_price(SAMSUNG, 70_900)
        await r.sim.wait_order_done(ack.order_no)
        assert order.status is OrderStatus.FILLED
        assert acc.holdings[SAMSUNG] == 12
        assert acc.cash == 10_000_000 - 2 * 70_900

        # The unrounded price is what KIS refuses: the rounding is not cosmetic.
        with pytest.raises(KisApiError) as caught:
            await r.client.place_order(
                creds, account, OrderRequest(SAMSUNG, Side.BUY, 1, OrderType.LIMIT, wanted)
            )
        assert caught.value.msg_cd == "APBK0506"


@ENVS
async def test_cancel_and_revise_a_resting_limit_order(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        creds, account = creds_of(acc), account_of(acc)
        ack = await r.client.place_order(
            creds, account, OrderRequest(SAMSUNG, Side.BUY, 5, OrderType.LIMIT, 70_000)
        )
        revised = await r.client.revise_order(
            creds, account, branch=ack.branch, order_no=ack.order_no, quantity=2,
            price=69_900, order_type=OrderType.LIMIT,
        )
        assert r.sim.order(revised.order_no).original_odno == ack.order_no
        assert r.sim.order(revised.order_no).price == 69_900
        assert r.sim.order(revised.order_no).tr_id == TR[env]["rvsecncl"]

        cancel = await r.client.cancel_order(creds, account, branch=ack.branch,
                                             order_no=ack.order_no)
        original = r.sim.order(ack.order_no)
        assert original.status is OrderStatus.CANCELLED
        assert original.cancelled_qty == 5
        assert r.sim.order(cancel.order_no).body["QTY_ALL_ORD_YN"] == "Y"
        # Only the revision (2 at 69,900) still holds cash.
        assert acc.reserved_cash == 2 * 69_900


@ENVS
async def test_insufficient_cash_is_refused_with_kis_message_and_never_retried(
    env: Environment,
) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        with pytest.raises(KisApiError) as caught:
            await r.client.place_order(
                creds_of(acc), account_of(acc), OrderRequest(SAMSUNG, Side.BUY, 1_000)
            )
        error = caught.value
        assert type(error) is KisApiError
        assert error.msg_cd == "APBK0952"
        assert error.msg1 == "주문가능금액을 초과 했습니다"
        assert error.tr_id == TR[env]["buy"]
        assert error.rt_cd == "1"
        assert r.requests("order") == ["APBK0952"]
        assert r.sim.orders == []
        assert acc.cash == 10_000_000 and acc.reserved_cash == 0


# -- inquiries ------------------------------------------------------------------------------


@ENVS
async def test_price_inquiry(env: Environment) -> None:
    async with rig() as r:
        creds = creds_of(r.account_of(env))
        quote = await r.client.price(creds, "035720")
        assert (quote.price, quote.base_price, quote.tick) == (42_000, 42_000, 50)
        assert (quote.lower_limit, quote.upper_limit) == (29_400, 54_600)
        assert not quote.suspended
        r.sim.set_price("035720", 43_050)
        r.sim.set_suspended("035720")
        quote = await r.client.price(creds, "035720")
        assert (quote.price, quote.tick, quote.suspended) == (43_050, 50, True)
        assert [q.tr_id for q in r.sim.requests if q.endpoint == "price"] == [
            "FHKST01010100"
        ] * 2


@ENVS
async def test_unknown_symbol_price_is_a_refusal(env: Environment) -> None:
    async with rig() as r:
        with pytest.raises(KisApiError) as caught:
            await r.client.price(creds_of(r.account_of(env)), "999999")
        assert not isinstance(caught.value, KisServerError)
        assert caught.value.msg_cd == "KIOK0560"
        assert r.requests("price") == ["KIOK0560"]


EXTRA = tuple(Instrument(f"9{n:05d}", f"종목{n}", 10_000 + n * 10) for n in range(25))


@ENVS
async def test_balance_collects_every_page(env: Environment) -> None:
    holdings = {inst.symbol: 1 + n for n, inst in enumerate(DEFAULT_INSTRUMENTS + EXTRA)}
    accounts = generate_accounts(1, env, holdings=holdings)
    async with rig(accounts=accounts, instruments=DEFAULT_INSTRUMENTS + EXTRA,
                   balance_page_rows={env: 7}) as r:
        acc = r.account_of(env)
        balance = await r.client.balance(creds_of(acc), account_of(acc))

        assert len(holdings) == 34  # 5 pages of 7
        assert {h.symbol: h.quantity for h in balance.holdings} == holdings
        assert len(balance.holdings) == 34  # no page read twice
        assert balance.cash == 10_000_000
        pages = [q for q in r.sim.requests if q.endpoint == "balance"]
        assert [q.tr_cont for q in pages] == ["", "N", "N", "N", "N"]
        assert {q.tr_id for q in pages} == {TR[env]["balance"]}
        assert [q.msg_cd for q in pages] == [pages[0].msg_cd] * 5
        assert all(q.status == 200 for q in pages)


@ENVS
async def test_balance_with_default_page_size_is_one_request(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        balance = await r.client.balance(creds_of(acc), account_of(acc))
        assert [(h.symbol, h.quantity) for h in balance.holdings] == [(SAMSUNG, 10)]
        assert [q.tr_cont for q in r.sim.requests if q.endpoint == "balance"] == [""]


@ENVS
async def test_buyable_amount_and_quantity(env: Environment) -> None:
    async with rig() as r:
        acc = r.account_of(env)
        creds, account = creds_of(acc), account_of(acc)
        at_market = await r.client.buyable(creds, account, SAMSUNG)
        assert (at_market.quantity, at_market.amount) == (10_000_000 // 92_300, 10_000_000)
        at_limit = await r.client.buyable(creds, account, SAMSUNG, 70_000)
        assert at_limit.quantity == 10_000_000 // 70_000
        assert [q.tr_id for q in r.sim.requests if q.endpoint == "psbl"] == [TR[env]["psbl"]] * 2


def sim_day(sim: KisSimulator) -> date:
    return kst(sim.now()).date()


@ENVS
async def test_daily_executions_collects_every_page(env: Environment) -> None:
    async with rig(executions_page_rows={env: 2}) as r:
        acc = r.account_of(env)
        creds, account = creds_of(acc), account_of(acc)
        placed = []
        for qty in range(1, 6):
            ack = await r.client.place_order(creds, account,
                                             OrderRequest(SAMSUNG, Side.BUY, qty))
            await r.sim.wait_order_done(ack.order_no)
            placed.append(ack.order_no)

        day = sim_day(r.sim)
        rows = await r.client.daily_executions(creds, account, start=day, end=day)

        assert sorted(row.order_no for row in rows) == sorted(placed)
        assert len(rows) == 5
        by_no = {row.order_no: row for row in rows}
        for qty, order_no in enumerate(placed, start=1):
            row = by_no[order_no]
            assert (row.side, row.symbol, row.order_qty, row.filled_qty, row.remaining_qty) == (
                Side.BUY, SAMSUNG, qty, qty, 0
            )
            assert row.avg_price == 71_000 and not row.cancelled
        pages = [q for q in r.sim.requests if q.endpoint == "ccld"]
        assert [q.tr_cont for q in pages] == ["", "N", "N"]
        assert {q.tr_id for q in pages} == {TR[env]["ccld"]}

        # One order by number, as reconciliation asks.
        one = await r.client.daily_executions(creds, account, start=day, end=day,
                                              order_no=placed[2])
        assert [row.order_no for row in one] == [placed[2]]
