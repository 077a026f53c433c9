"""The real KIS REST client against the simulator's faults and its rate limit.

Faults: EGW00201 (retried, one order), lost answers after the order was placed
(`OrderOutcomeUnknown`, reconciled through the daily executions), dropped sockets,
non-KIS 5xx pages, hangs, gateway errors and the token-issuance limit. Time is the
simulator's `ManualClock` shared with the client (backoffs and the one-token-a-minute
wait cost nothing), except in the rate-limit tests, which need real time on both sides.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from kis.client import KisClient, ResponseObserver, default_http_client
from kis.env import RATE_LIMITS, Endpoints, Environment
from kis.errors import (
    KisApiError,
    KisRateLimited,
    KisServerError,
    KisTokenIssueTooSoon,
    OrderOutcomeUnknown,
)
from kis.models import Account, AppCredentials, OrderRequest, Side
from kis.secret import Secret
from kis.sim import KisSimulator, ManualClock, OrderStatus, SimAccount
from kis.sim.clock import kst
from kis.tokenstore import MemoryTokenStore

PAPER = Environment.PAPER
REAL = Environment.REAL
ENVS = pytest.mark.parametrize("env", [PAPER, REAL], ids=["paper", "real"])
SAMSUNG = "005930"
SUCCESS_CODES = frozenset(
    {"", "20310000", "KIOK0000", "APBK0013", "40600000", "40610000", "40660000"}
)
HTTP_TIMEOUT = 0.5  # how long the client waits for an answer that never comes


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
        self.clock.now = max(self.clock.now, target)


@dataclass
class Rig:
    sim: KisSimulator
    client: KisClient
    time: VirtualTime

    def account(self, env: Environment) -> SimAccount:
        return next(a for a in self.sim.accounts if a.env is env)

    def requests(self, endpoint: str) -> list[str]:
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


def endpoints_of(sim: KisSimulator) -> Endpoints:
    return Endpoints(rest={env: sim.rest_url(env) for env in Environment},
                     ws={env: sim.ws_url(env) for env in Environment})


@asynccontextmanager
async def rig(on_response: ResponseObserver | None = None) -> AsyncIterator[Rig]:
    clock = ManualClock()
    vt = VirtualTime(clock)
    sim = KisSimulator(clock=clock, rate_limits={PAPER: 1000, REAL: 1000})
    await sim.start()
    http = default_http_client(HTTP_TIMEOUT)
    client = KisClient(endpoints=endpoints_of(sim), http=http, token_store=MemoryTokenStore(),
                       rate_limits={PAPER: 1000.0, REAL: 1000.0},
                       clock=vt.monotonic, sleep=vt.sleep, now=vt.now,
                       on_response=on_response)
    try:
        yield Rig(sim=sim, client=client, time=vt)
    finally:
        await http.aclose()
        await sim.stop()


async def warm(r: Rig, acc: SimAccount) -> None:
    """Obtain the token first, so the fault under test meets the call, not the issuance."""
    await r.client.access_token(creds_of(acc))


# -- EGW00201 and the rate limit ----------------------------------------------------------


@ENVS
async def test_rate_limited_order_is_retried_and_placed_once(env: Environment) -> None:
    async with rig() as r:
        acc = r.account(env)
        r.sim.faults.add("order", "EGW00201", count=2)
        ack = await r.client.place_order(creds_of(acc), account_of(acc),
                                         OrderRequest(SAMSUNG, Side.BUY, 1))
        assert r.requests("order") == ["EGW00201", "EGW00201", "ok"]
        assert [o.odno for o in r.sim.orders] == [ack.order_no]
        assert [s for s in r.time.sleeps if s > 0] == [0.2, 0.4]  # backoff, on virtual time
        await r.sim.wait_order_done(ack.order_no)
        assert acc.holdings[SAMSUNG] == 11


async def test_rate_limit_retries_on_an_order_are_bounded() -> None:
    async with rig() as r:
        acc = r.account(PAPER)
        r.sim.faults.add("order", "EGW00201", count=50)
        with pytest.raises(KisRateLimited):
            await r.client.place_order(creds_of(acc), account_of(acc),
                                       OrderRequest(SAMSUNG, Side.BUY, 1))
        assert r.requests("order") == ["EGW00201"] * 6  # first try + 5 retries
        assert r.sim.orders == []


def most_in_one_second(times: list[float]) -> int:
    """The most requests whose arrival times fit in any half-open one-second window."""
    best = 0
    for i, start in enumerate(times):
        best = max(best, sum(1 for t in times[i:] if t - start < 1.0))
    return best


@pytest.mark.parametrize("env, calls", [(PAPER, 6), (REAL, 30)], ids=["paper", "real"])
async def test_client_limiter_keeps_under_the_simulated_limit(
    env: Environment, calls: int
) -> None:
    """Real time on both sides, default limits of both: KIS's 2/s (paper), 20/s (real)."""
    async with KisSimulator() as sim, default_http_client(5.0) as http:
        acc = next(a for a in sim.accounts if a.env is env)
        client = KisClient(endpoints=endpoints_of(sim), http=http,
                           token_store=MemoryTokenStore())
        await client.access_token(creds_of(acc))
        started = time.monotonic()
        await asyncio.gather(*(client.price(creds_of(acc), SAMSUNG) for _ in range(calls)))
        elapsed = time.monotonic() - started

        prices = [q for q in sim.requests if q.endpoint == "price"]
        assert [q.msg_cd for q in prices if q.msg_cd == "EGW00201"] == []
        assert len(prices) == calls
        assert most_in_one_second([q.time for q in prices]) <= sim.rate_limits[env]
        # Paced by the limiter, not by luck: the calls took their slots' time.
        assert elapsed >= (calls - 1) / RATE_LIMITS[env] - 0.05


# -- lost answers on orders: unknown outcome, reconciled via the daily executions ---------------


@pytest.mark.parametrize("then", ["hang", "drop"])
@ENVS
async def test_lost_answer_after_the_order_was_placed_is_unknown_and_reconciled(
    env: Environment, then: str
) -> None:
    async with rig() as r:
        acc = r.account(env)
        creds, account = creds_of(acc), account_of(acc)
        await warm(r, acc)
        r.sim.faults.add("order", "timeout_after_accept", then=then)
        request = OrderRequest(SAMSUNG, Side.BUY, 4)

        with pytest.raises(OrderOutcomeUnknown) as caught:
            await r.client.place_order(creds, account, request)

        assert caught.value.order == request
        assert r.requests("order") == ["ok"]  # sent once, never again
        assert len(r.sim.orders) == 1
        placed = r.sim.orders[0]
        await r.sim.wait_order_done(placed.odno)
        day = kst(r.sim.now()).date()
        rows = await r.client.daily_executions(creds, account, start=day, end=day)
        assert [(row.order_no, row.order_qty, row.filled_qty) for row in rows] == [
            (placed.odno, 4, 4)
        ]
        assert acc.holdings[SAMSUNG] == 14


@ENVS
async def test_connection_dropped_before_the_order_is_unknown_not_resent(
    env: Environment,
) -> None:
    async with rig() as r:
        acc = r.account(env)
        creds, account = creds_of(acc), account_of(acc)
        await warm(r, acc)
        r.sim.faults.add("order", "drop")

        with pytest.raises(OrderOutcomeUnknown) as caught:
            await r.client.place_order(creds, account, OrderRequest(SAMSUNG, Side.SELL, 1))

        # The simulator dropped it unprocessed, but the request had left the client:
        # from the client's side that is indistinguishable from a lost answer.
        assert isinstance(caught.value.__cause__, httpx.TransportError)
        assert r.requests("order") == ["drop"]
        assert r.sim.orders == []
        day = kst(r.sim.now()).date()
        assert await r.client.daily_executions(creds, account, start=day, end=day) == []


async def test_non_kis_5xx_page_on_an_order_is_unknown_not_resent() -> None:
    async with rig() as r:
        acc = r.account(REAL)
        r.sim.faults.add("order", "http_5xx", status=502)
        with pytest.raises(OrderOutcomeUnknown):
            await r.client.place_order(creds_of(acc), account_of(acc),
                                       OrderRequest(SAMSUNG, Side.BUY, 1))
        assert r.requests("order") == ["http_5xx"]


@ENVS
async def test_business_refusal_with_http_500_is_a_refusal_not_unknown(env: Environment) -> None:
    async with rig() as r:
        acc = r.account(env)
        r.sim.faults.add("order", "APBK0919", status=500)
        with pytest.raises(KisApiError) as caught:
            await r.client.place_order(creds_of(acc), account_of(acc),
                                       OrderRequest(SAMSUNG, Side.BUY, 1))
        assert type(caught.value) is KisApiError
        assert (caught.value.msg_cd, caught.value.http_status) == ("APBK0919", 500)
        assert caught.value.msg1 == "주문단가가 상/하한가를 벗어났습니다."
        assert r.requests("order") == ["APBK0919"]


async def test_refusal_after_acceptance_shows_in_the_daily_executions() -> None:
    async with rig() as r:
        acc = r.account(PAPER)
        creds, account = creds_of(acc), account_of(acc)
        r.sim.faults.add("order", "reject_after_accept")
        ack = await r.client.place_order(creds, account, OrderRequest(SAMSUNG, Side.BUY, 3))
        order = await r.sim.wait_order_done(ack.order_no)
        assert order.status is OrderStatus.REJECTED
        day = kst(r.sim.now()).date()
        [row] = await r.client.daily_executions(creds, account, start=day, end=day,
                                                order_no=ack.order_no)
        assert (row.order_qty, row.filled_qty, row.rejected_qty, row.remaining_qty) == (
            3, 0, 3, 0
        )
        assert acc.reserved_cash == 0 and acc.holdings[SAMSUNG] == 10


# -- inquiries: transient trouble is retried ----------------------------------------------------


@pytest.mark.parametrize("kind", ["http_5xx", "drop", "hang", "OPSQ0001"])
@ENVS
async def test_transient_failure_on_an_inquiry_is_retried(env: Environment, kind: str) -> None:
    async with rig() as r:
        acc = r.account(env)
        await warm(r, acc)
        r.sim.faults.add("price", kind)
        quote = await r.client.price(creds_of(acc), SAMSUNG)
        assert quote.price == 71_000
        assert r.requests("price") == [kind, "ok"]


async def test_persistent_5xx_on_an_inquiry_gives_up_after_bounded_retries() -> None:
    async with rig() as r:
        acc = r.account(PAPER)
        await warm(r, acc)
        r.sim.faults.add("balance", "http_5xx", count=10)
        with pytest.raises(KisServerError) as caught:
            await r.client.balance(creds_of(acc), account_of(acc))
        assert caught.value.http_status == 502
        assert r.requests("balance") == ["http_5xx"] * 3


async def test_dropped_second_page_is_retried_with_its_continuation() -> None:
    faults: list[str] = []

    def drop_the_next_page(tr_id: str, seconds: float, msg_cd: str | None) -> None:
        if tr_id == "TTTC0081R" and not faults:
            faults.append(r.sim.faults.add("ccld", "drop").kind)

    async with rig(drop_the_next_page) as r:
        acc = r.account(REAL)
        creds, account = creds_of(acc), account_of(acc)
        for _ in range(3):
            ack = await r.client.place_order(creds, account, OrderRequest(SAMSUNG, Side.BUY, 1))
            await r.sim.wait_order_done(ack.order_no)
        r.sim.executions_page_rows[REAL] = 2
        day = kst(r.sim.now()).date()

        rows = await r.client.daily_executions(creds, account, start=day, end=day)

        assert faults == ["drop"]
        assert sorted(row.order_no for row in rows) == sorted(o.odno for o in r.sim.orders)
        assert [(q.tr_cont, q.msg_cd) for q in r.sim.requests if q.endpoint == "ccld"] == [
            ("", "KIOK0000"), ("N", "drop"), ("N", "KIOK0000")
        ]


# -- token issuance limit -----------------------------------------------------------------------


async def test_token_issued_too_soon_is_not_looped_and_waits_out_the_minute() -> None:
    async with rig() as r:
        acc = r.account(PAPER)
        r.sim.faults.add("token", "EGW00133")
        with pytest.raises(KisTokenIssueTooSoon):
            await r.client.price(creds_of(acc), SAMSUNG)
        assert r.requests("token") == ["EGW00133"]

        quote = await r.client.price(creds_of(acc), SAMSUNG)
        assert quote.price == 71_000
        tokens = [q for q in r.sim.requests if q.endpoint == "token"]
        assert [q.msg_cd for q in tokens] == ["EGW00133", ""]
        assert tokens[1].time - tokens[0].time >= 60.0
        assert r.sim.token_issuances == {acc.app_key: 1}


# -- before_send: the seam where the order's row is written --------------------------------


async def test_before_send_runs_once_per_order_after_token_and_slot_across_safe_retries(
) -> None:
    """EGW00201 and a re-issued token retry the request, never the hook; the hook sees the
    token already obtained (the order's row is written only when the request leaves)."""
    async with rig() as r:
        acc = r.account(PAPER)
        await warm(r, acc)
        r.sim.expire_tokens(acc.app_key)
        r.sim.faults.add("order", "EGW00201")
        calls: list[int] = []

        async def hook() -> None:
            calls.append(len([q for q in r.sim.requests if q.endpoint == "order"]))

        ack = await r.client.place_order(creds_of(acc), account_of(acc),
                                         OrderRequest(SAMSUNG, Side.BUY, 1), before_send=hook)
        assert calls == [0], "once, before the first request"
        assert r.requests("order") == ["EGW00201", "EGW00123", "ok"]
        assert [o.odno for o in r.sim.orders] == [ack.order_no]


async def test_nothing_is_sent_when_before_send_fails() -> None:
    async with rig() as r:
        acc = r.account(PAPER)

        async def refuse() -> None:
            raise RuntimeError("the row could not be written")

        with pytest.raises(RuntimeError):
            await r.client.place_order(creds_of(acc), account_of(acc),
                                       OrderRequest(SAMSUNG, Side.BUY, 1), before_send=refuse)
        assert r.requests("order") == [] and r.sim.orders == []


async def test_rate_limited_token_reissue_is_retried_and_the_order_placed_once() -> None:
    """The token expired and its re-issue meets EGW00201 (KIS refused the request before
    issuing anything): backed off and asked again, as on the order endpoint, so the
    order is placed instead of failing; one token issued."""
    async with rig() as r:
        acc = r.account(PAPER)
        await warm(r, acc)
        r.sim.expire_tokens(acc.app_key)
        r.time.clock.now += 120  # the once-a-minute issuance limit is not what is tested
        issued = r.sim.token_issuances.get(acc.app_key, 0)
        r.sim.faults.add("token", "EGW00201", count=2)
        ack = await r.client.place_order(creds_of(acc), account_of(acc),
                                         OrderRequest(SAMSUNG, Side.BUY, 1))
        assert r.requests("token")[-3:] == ["EGW00201", "EGW00201", "ok"]
        assert r.sim.token_issuances[acc.app_key] == issued + 1
        assert [o.odno for o in r.sim.orders] == [ack.order_no]
        assert [s for s in r.time.sleeps if s in (0.2, 0.4)][:2] == [0.2, 0.4]


async def test_rate_limited_token_issue_retries_are_bounded() -> None:
    async with rig() as r:
        acc = r.account(PAPER)
        r.sim.faults.add("token", "EGW00201", count=50)
        with pytest.raises(KisRateLimited):
            await r.client.access_token(creds_of(acc))
        assert r.requests("token") == ["EGW00201"] * 6
