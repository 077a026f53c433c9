"""The order pipeline end to end: HTTP on a real socket → StorageIntake (SQLite, or
PostgreSQL when MOAHOOK_TEST_DATABASE_URL is set) → OrderPipeline → KisClient → the
KIS simulator over loopback. Assertions look at what the simulator received."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import random
import secrets
import string
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text

from bot.formatting import format_dry_run, format_notice
from bot.texts import EN, KO, t
from bot.views import log_message, orders_message
from kis.client import KisClient
from kis.env import Endpoints, Environment
from kis.markets import Markets
from kis.sim import (
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_CANO,
    DEMO_HTS_ID,
    KisSimulator,
    SimAccount,
    demo_account,
    generate_accounts,
)
from kis.tokenstore import MemoryTokenStore
from storage.db import Database
from storage.facade import Storage
from storage.notices import Notice, NoticeKind
from storage.records import AlertStatus, OrderStatus
from webhook_server.app import create_app
from webhook_server.market_hours import MarketClock
from webhook_server.metrics import Metrics
from webhook_server.pipeline import OrderPipeline, PipelineHooks, kis_metrics_observer
from webhook_server.reconcile import NOT_PLACED
from webhook_server.store_intake import StorageIntake

PG_URL = os.environ.get("MOAHOOK_TEST_DATABASE_URL", "").strip()
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
PAPER = Environment.PAPER
WAIT = 10.0


class Readiness:
    def __init__(self) -> None:
        self.ready = True
        self.reason = ""
        self.asked: list[tuple[int, Environment]] = []
        self.waiting: asyncio.Event | None = None  # set while the pipeline holds an alert
        self.back: asyncio.Event | None = None  # set it to end the wait: the socket is back
        self.waited: list[float] = []

    def state_for(self, user_id: int, env: Environment) -> tuple[bool, str]:
        self.asked.append((user_id, env))
        return self.ready, self.reason

    async def wait_ready(self, user_id: int, env: Environment, within: float) -> None:
        self.waited.append(within)
        if self.waiting is None or self.back is None:
            return
        self.waiting.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.back.wait(), within)


@dataclass
class User:
    id: int
    token: str
    account: SimAccount


@dataclass
class Stack:
    sim: KisSimulator
    storage: Storage
    kis: KisClient
    metrics: Metrics
    readiness: Readiness
    client: TestClient[web.Request, web.Application]
    intake: StorageIntake
    pipeline: OrderPipeline
    user: User
    wakes: list[int] = field(default_factory=list)
    make_pipeline: Callable[..., OrderPipeline] | None = None

    async def post(self, body: object, token: str | None = None) -> tuple[int, dict[str, Any]]:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        response = await self.client.post(f"/hook/{token or self.user.token}", data=data)
        return response.status, await response.json(content_type=None)

    async def settle(self) -> None:
        await asyncio.wait_for(self.pipeline.wait_idle(), WAIT)

    async def alert(self, alert_id: str | int) -> Any:
        record = await self.storage.alerts.get(int(alert_id))
        assert record is not None
        return record

    async def outbox(self) -> list[dict[str, object]]:
        return [m.payload for m in await self.storage.outbox.due(limit=1000)]

    def order_bodies(self) -> list[dict[str, str]]:
        return [dict(order.body) for order in self.sim.orders]

    async def add_user(self, account: SimAccount, telegram_id: int, *, validated: bool = True,
                       keys: bool = True) -> User:
        return await add_user(self.storage, account, telegram_id, validated=validated, keys=keys)


async def add_user(storage: Storage, account: SimAccount, telegram_id: int, *,
                   validated: bool = True, keys: bool = True) -> User:
    record = await storage.users.get_or_create(telegram_id, telegram_id)
    if account.env is not Environment.PAPER:
        await storage.users.set_active_environment(record.id, account.env)
    if keys:
        await storage.key_sets.save(
            record.id, account.env, app_key=account.app_key, app_secret=account.app_secret,
            cano=account.cano, product_code=account.product_code, hts_id=account.hts_id,
        )
        await storage.key_sets.record_checks(record.id, account.env, {"token": True}, validated)
    return User(record.id, await storage.users.webhook_token(record.id), account)


@asynccontextmanager
async def database(tmp_path: Path, backend: str) -> AsyncIterator[Storage]:
    if backend == "sqlite":
        storage = await Storage.open(f"sqlite+aiosqlite:///{tmp_path}/pipeline.db",
                                     [secrets.token_bytes(32)])
        try:
            yield storage
        finally:
            await storage.close()
        return
    schema = f"moahook_pl_{secrets.token_hex(6)}"
    admin = Database.create(PG_URL)
    try:
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        storage = await Storage.open(PG_URL, [secrets.token_bytes(32)], schema=schema)
        try:
            yield storage
        finally:
            await storage.close()
    finally:
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@asynccontextmanager
async def stack(
    tmp_path: Path,
    *,
    backend: str = "sqlite",
    market: MarketClock | None = None,
    clock: Callable[[], datetime] | None = None,
    hooks: PipelineHooks | None = None,
    kis_timeout: float = 2.0,
    accounts: list[SimAccount] | None = None,
    app_options: dict[str, Any] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    kis_options: dict[str, Any] | None = None,
    markets: Markets | None = None,
) -> AsyncIterator[Stack]:
    sim = KisSimulator(
        accounts if accounts is not None else [demo_account()],
        rate_limits={Environment.PAPER: 1000, Environment.REAL: 1000},
    )
    await sim.start()
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(kis_timeout, connect=1.0), transport=transport
    )
    metrics = Metrics()
    kis = KisClient(
        endpoints=Endpoints(rest={env: sim.rest_url(env) for env in Environment}, ws={}),
        http=http, token_store=MemoryTokenStore(),
        **{"rate_limits": {Environment.PAPER: 500.0, Environment.REAL: 500.0},
           **(kis_options or {})},
        on_response=kis_metrics_observer(metrics),
    )
    readiness = Readiness()
    wakes: list[int] = []
    try:
        async with database(tmp_path, backend) as storage:
            def make_pipeline(
                hooks: PipelineHooks | None = None, **options: Any
            ) -> OrderPipeline:
                return OrderPipeline(
                    storage=storage, kis=kis, market=market or MarketClock(enforce=False),
                    readiness=readiness, metrics=metrics, markets=markets,
                    wake=lambda message=None: wakes.append(1),
                    clock=clock or (lambda: datetime.now(UTC)),
                    reconcile_attempts=3, reconcile_delay_s=0.01, hooks=hooks,
                    **options,
                )

            pipeline = make_pipeline(hooks)
            intake = StorageIntake(storage, pipeline)
            await intake.start()
            app = create_app(
                intake=intake, metrics=metrics, health=_healthy, **(app_options or {})
            )
            user = await add_user(storage, sim.accounts[0], 1)
            try:
                async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
                    result = Stack(sim, storage, kis, metrics, readiness, client, intake,
                                   pipeline, user, wakes, make_pipeline)
                    try:
                        yield result
                    finally:
                        await result.pipeline.close()
            finally:
                await intake.close()
                await pipeline.close()
    finally:
        await http.aclose()
        await sim.stop()


class Gate(httpx.AsyncBaseTransport):
    """A slow KIS for one app key: its order requests wait until `release` is set."""

    def __init__(self, app_key: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._app_key = app_key
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("appkey") == self._app_key and request.url.path.endswith(
            "order-cash"
        ):
            self.waiting.set()
            await self.release.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Unreachable(httpx.AsyncBaseTransport):
    """KIS's order endpoint cannot be connected to; everything else passes through."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("order-cash"):
            raise httpx.ConnectError("connection refused", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _healthy() -> tuple[bool, str]:
    return True, ""


def body(symbol: str = "005930", qty: str = "3", *, side: str = "BUY", ord_dvsn: str = "01",
         price: str = "0") -> dict[str, str]:
    return {
        "CANO": DEMO_CANO, "ACNT_PRDT_CD": "01", "PDNO": symbol, "ORD_DVSN": ord_dvsn,
        "ORD_QTY": qty, "ORD_UNPR": price, "EXCG_ID_DVSN_CD": "KRX",
        "SLL_TYPE": "01" if side == "SELL" else "", "CNDT_PRIC": "",
    }


# --- placement and sizing -------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_quantity_alert_becomes_one_order(tmp_path: Path, backend: str) -> None:
    async with stack(tmp_path, backend=backend) as s:
        status, answer = await s.post(
            {"ticker": "KRX:005930", "action": "buy", "quantity": "3", "comment": "go"}
        )
        assert status == 200 and answer["status"] == "accepted"
        await s.settle()
        assert s.order_bodies() == [body(qty="3")]
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.DONE
        order = await s.storage.orders.by_alert(alert.id)
        assert order is not None and order.status in (OrderStatus.ACCEPTED, OrderStatus.FILLED)
        assert order.order_no == s.sim.orders[0].odno
        notices = await s.outbox()
        assert [n["kind"] for n in notices] == ["order_accepted"]
        assert notices[0]["order_no"] == order.order_no and notices[0]["comment"] == "go"
        assert s.wakes, "the notifier is woken after a notice is queued"
        main = await s.storage.accounts.default(s.user.id)
        assert main is not None and s.readiness.asked == [(main.id, PAPER)]
        rendered = s.metrics.render().decode()
        assert 'moahook_orders_total{outcome="accepted"} 1.0' in rendered
        assert "moahook_kis_request_seconds_count" in rendered


async def test_amount_mode_reads_the_price(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        price = s.sim.price("005930")
        status, _ = await s.post(
            {"ticker": "005930", "action": "buy", "amount": str(price * 2 + price // 2)}
        )
        assert status == 200
        await s.settle()
        assert s.order_bodies() == [body(qty="2")]
        assert [r.endpoint for r in s.sim.requests if r.endpoint != "token"] == ["price", "order"]


async def test_amount_below_one_share_is_refused_with_price_and_amount(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.sim.set_price("005930", 71_000)
        status, answer = await s.post({"ticker": "005930", "action": "buy", "amount": "50000"})
        assert status == 200 and answer["status"] == "accepted"
        await s.settle()
        assert s.sim.orders == []
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.REFUSED
        assert "50,000" in alert.reason and "71,000" in alert.reason
        [notice] = await s.outbox()
        assert notice["kind"] == "order_refused"
        assert notice["reason_key"] == "amount_below_one_share"
        assert notice["reason_params"] == {
            "amount": "50,000", "price": "71,000", "currency": "KRW"}


@pytest.mark.parametrize(
    ("quantity", "expected"), [("all", "10"), ("50%", "5"), ("30%", "3"), ("4", "4")]
)
async def test_sells_of_the_holding(tmp_path: Path, quantity: str, expected: str) -> None:
    async with stack(tmp_path) as s:  # the demo account holds 10 × 005930
        await s.post({"ticker": "005930", "action": "sell", "quantity": quantity})
        await s.settle()
        assert s.order_bodies() == [body(qty=expected, side="SELL")]
        assert "balance" in [r.endpoint for r in s.sim.requests]


@pytest.mark.parametrize(
    ("target", "expected"), [("15", ("BUY", "5")), ("4", ("SELL", "6")), ("0", ("SELL", "10"))]
)
async def test_target_position_orders_the_difference(
    tmp_path: Path, target: str, expected: tuple[str, str]
) -> None:
    async with stack(tmp_path) as s:
        await s.post({"ticker": "005930", "position": target})
        await s.settle()
        side, qty = expected
        assert s.order_bodies() == [body(qty=qty, side=side)]


async def test_target_position_already_held_is_nothing_to_do(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        _, answer = await s.post({"ticker": "005930", "position": "10"})
        await s.settle()
        assert s.sim.orders == []
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.REFUSED and "target position" in alert.reason
        [notice] = await s.outbox()
        assert notice["reason_key"] == "nothing_to_do"


@pytest.mark.parametrize(
    ("side", "price", "sent"), [("buy", "71050", "71000"), ("sell", "71001", "71100")]
)
async def test_limit_price_is_rounded_to_the_tick(
    tmp_path: Path, side: str, price: str, sent: str
) -> None:
    async with stack(tmp_path) as s:
        await s.post({"ticker": "005930", "action": side, "quantity": "1",
                      "order_type": "limit", "price": price})
        await s.settle()
        assert s.order_bodies() == [
            body(qty="1", side=side.upper(), ord_dvsn="00", price=sent)
        ]
        [order] = await s.storage.orders.recent(s.user.id)
        assert order.order_type == "limit" and order.price == int(sent)


# --- guards ---------------------------------------------------------------------------


async def refused(s: Stack, message: dict[str, object]) -> tuple[Any, dict[str, object]]:
    status, answer = await s.post(message)
    assert status == 200 and answer["status"] == "accepted"
    await s.settle()
    assert s.sim.orders == []
    assert not [r for r in s.sim.requests if r.endpoint == "order"], "blocked before KIS"
    alert = await s.alert(answer["alert_id"])
    assert alert.status is AlertStatus.REFUSED
    notices = await s.outbox()
    assert [n["kind"] for n in notices] == ["order_refused"]
    return alert, notices[0]


BUY: dict[str, str] = {"ticker": "005930", "action": "buy", "quantity": "1"}


def localized(notice: dict[str, object]) -> dict[str, str]:
    """The notice names a `reason.*` text of both catalogs and carries every parameter that
    text asks for (so the chat never falls back to the English literal); its params."""
    key = f"reason.{notice['reason_key']}"
    params = notice["reason_params"]
    assert notice["reason_key"] and isinstance(params, dict), notice
    for lang, catalog in (("ko", KO), ("en", EN)):
        fields = {name for _, name, _, _ in string.Formatter().parse(catalog[key]) if name}
        assert fields <= set(params), (key, params)
        t(lang, key, **params)
    assert notice["reason"], "the literal reason is kept for /log and as the fallback"
    return {str(k): str(v) for k, v in params.items()}


async def test_guard_paused(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.users.set_paused(s.user.id, True)
        alert, notice = await refused(s, BUY)
        assert notice["reason_key"] == "paused" and "paused" in alert.reason
        localized(notice)
        assert s.readiness.asked == []  # paused is checked first


async def test_log_reads_a_refusal_in_korean(tmp_path: Path) -> None:
    """The alert keeps its reason as a key and figures, so /log shows it in the user's
    language (it showed the English text and `buy` to a Korean user)."""
    async with stack(tmp_path) as s:
        await s.storage.users.set_paused(s.user.id, True)
        alert, _ = await refused(s, BUY)
        assert alert.reason_key == "paused"
        [stored] = await s.storage.alerts.recent(s.user.id)
        text = log_message("ko", [stored])
        assert "매수 005930 1주" in text
        assert "거절: 알림 처리가 멈춰 있습니다 (/resume)" in text
        assert "buy" not in text and "paused" not in text
        assert "refused: acting on alerts is paused" in log_message("en", [stored])


async def test_a_refused_alert_resent_without_id_is_placed_not_a_duplicate(
    tmp_path: Path,
) -> None:
    """A resend within 60 s of an alert refused while paused was answered `duplicate` and
    never placed; now it is a new alert. Its own resend, in flight or ordered, is the
    duplicate: answered so, recorded in /log, and silent in the chat."""
    async with stack(tmp_path) as s:
        await s.storage.users.set_paused(s.user.id, True)
        first, _ = await refused(s, BUY)
        await s.storage.users.set_paused(s.user.id, False)
        status, retry = await s.post(BUY)
        assert (status, retry["status"]) == (200, "accepted")
        assert retry["alert_id"] != str(first.id)
        await s.settle()
        assert len(s.sim.orders) == 1
        notices_before = await s.outbox()
        status, again = await s.post(BUY)
        assert (status, again) == (200, {"status": "duplicate", "alert_id": retry["alert_id"]})
        await s.settle()
        assert len(s.sim.orders) == 1
        assert await s.outbox() == notices_before  # nothing new for the chat
        log = log_message("ko", await s.storage.alerts.recent(s.user.id))
        assert f"중복: #{retry['alert_id']} 알림의 반복이라 무시했습니다" in log.splitlines()[1]


async def test_guard_no_validated_keys(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.key_sets.record_checks(s.user.id, PAPER, {}, validated=False)
        _, notice = await refused(s, BUY)
        assert notice["reason_key"] == "no_keys"
        localized(notice)


async def test_guard_no_keys_for_the_active_environment(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        await s.storage.users.set_active_environment(s.user.id, Environment.REAL)
        _, notice = await refused(s, BUY)
        assert notice["reason_key"] == "no_keys" and notice["env"] == "real"


async def test_guard_fill_notice_not_ready(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.readiness.ready, s.readiness.reason = False, "fill notice not ready: HTS ID refused"
        alert, notice = await refused(s, BUY)
        assert notice["reason_key"] == "fill_not_ready"
        assert localized(notice) == {"detail": "HTS ID refused"}  # the bare detail
        assert alert.reason == "fill notices are not ready: HTS ID refused"


async def test_guard_stale(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        fired = (datetime.now(UTC) - timedelta(seconds=120)).isoformat()
        alert, notice = await refused(s, {**BUY, "time": fired, "max_lag": "30"})
        assert notice["reason_key"] == "stale"
        localized(notice)
        assert notice["reason_params"]["max_lag"] == "30"  # type: ignore[index]


async def test_guard_market_closed(tmp_path: Path) -> None:
    saturday = datetime(2026, 1, 3, 2, 0, tzinfo=UTC)  # 11:00 KST on a Saturday
    async with stack(tmp_path, market=MarketClock(enforce=True), clock=lambda: saturday) as s:
        alert, notice = await refused(s, BUY)
        assert notice["reason_key"] == "market_closed" and "Saturday" in alert.reason
        assert "Saturday" in localized(notice)["detail"]


async def test_market_open_with_fixed_clock_places(tmp_path: Path) -> None:
    monday = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)  # 10:00 KST, a trading day
    async with stack(tmp_path, market=MarketClock(enforce=True), clock=lambda: monday) as s:
        await s.post(BUY)
        await s.settle()
        assert len(s.sim.orders) == 1


async def test_guard_sell_not_held(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        alert, notice = await refused(s, {"ticker": "000660", "action": "sell", "quantity": "1"})
        assert notice["reason_key"] == "not_held" and "000660" in alert.reason
        localized(notice)


@pytest.mark.parametrize(
    ("message", "key", "params"),
    [
        ({"action": "sell", "quantity": "20"}, "insufficient_holding",
         {"quantity": "20", "sellable": "10"}),
        ({"action": "sell", "quantity": "5%"}, "percent_rounds_to_zero",
         {"percent": "5", "held": "10"}),
        ({"position": "10"}, "nothing_to_do", {"held": "10"}),
    ],
)
async def test_sizing_refusals_name_their_reason_text(
    tmp_path: Path, message: dict[str, str], key: str, params: dict[str, str]
) -> None:
    async with stack(tmp_path) as s:  # the demo account holds 10 × 005930
        _, notice = await refused(s, {"ticker": "005930", **message})
        assert notice["reason_key"] == key and localized(notice) == params


async def test_failed_inquiry_names_its_reason_text(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.sim.faults.add("balance", "APBK0919", status=200, msg1="balance refused")
        _, answer = await s.post({"ticker": "005930", "action": "sell", "quantity": "1"})
        await s.settle()
        assert s.sim.orders == []
        [notice] = await s.outbox()
        assert notice["kind"] == "order_failed" and notice["reason_key"] == "inquiry_failed"
        assert "balance refused" in localized(notice)["detail"]
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.FAILED


# --- duplicates, KIS errors -------------------------------------------------------------


async def test_duplicates_make_one_order(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        with_id = {**BUY, "id": "strat-1"}
        first = await s.post(with_id)
        again = await s.post({**with_id, "comment": "same id, other body"})
        plain = await s.post(BUY)
        plain_again = await s.post(BUY)
        assert first[1]["status"] == "accepted" and plain[1]["status"] == "accepted"
        assert again == (200, {"status": "duplicate", "alert_id": first[1]["alert_id"]})
        assert plain_again == (200, {"status": "duplicate", "alert_id": plain[1]["alert_id"]})
        await s.settle()
        assert len(s.sim.orders) == 2


async def test_concurrent_repeats_store_one(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        answers = await asyncio.gather(*(s.post({**BUY, "id": "same"}) for _ in range(20)))
        assert {a[1]["alert_id"] for a in answers} == {answers[0][1]["alert_id"]}
        assert sorted(a[1]["status"] for a in answers).count("accepted") == 1
        await s.settle()
        assert len(s.sim.orders) == 1


async def test_spec_http_answers(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        assert await s.post(BUY, token="x" * 32) == (404, {"error": "not found"})
        status, answer = await s.post('{"ticker": 005930}')
        assert status == 400 and "ticker" in answer["error"]
        status, answer = await s.post({"ticker": "005930", "action": "hold", "quantity": 1})
        assert status == 400 and "action" in answer["error"]
        status, _ = await s.post(b"{" + b" " * 16_400 + b"}")
        assert status == 413
        await s.settle()
        assert s.sim.orders == []
        assert await s.storage.alerts.recent(s.user.id) == []


async def test_untrusted_sender_is_403(tmp_path: Path) -> None:
    options = {"trusted_ips": [ipaddress.ip_network("10.0.0.0/8")]}
    async with stack(tmp_path, app_options=options) as s:
        assert await s.post(BUY) == (403, {"error": "forbidden"})
        assert await s.storage.alerts.recent(s.user.id) == []


async def test_kis_refusal_is_reported_with_msg1(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.sim.faults.add("order", "APBK0952", status=200)
        _, answer = await s.post(BUY)
        await s.settle()
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.status is OrderStatus.REJECTED
        assert order.msg_cd == "APBK0952"
        [notice] = await s.outbox()
        assert notice["kind"] == "order_rejected" and "주문가능금액" in str(notice["reason"])
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.FAILED


async def test_a_kis_refusal_reads_the_same_in_the_notice_orders_and_log(
    tmp_path: Path,
) -> None:
    """One wording for a KIS refusal (was "주문 실패" in the notice, "KIS 거부" in /orders),
    with KIS's msg1 as KIS wrote it inside the localized frame."""
    async with stack(tmp_path) as s:
        s.sim.faults.add("order", "APBK0952", status=200)
        _, answer = await s.post(BUY)
        await s.settle()
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.reason_key == "kis_rejected"
        [payload] = await s.outbox()
        alert = await s.alert(answer["alert_id"])
        for lang, frame in (("ko", "KIS 거부"), ("en", "ejected by KIS")):
            notice = format_notice(Notice.from_payload(payload), lang)
            orders = orders_message(lang, [order])
            log = log_message(lang, [alert])
            for text in (notice, orders, log):
                assert frame in text, (lang, text)
                assert "[APBK0952]" in text and "주문가능금액" in text, (lang, text)
            assert "주문 실패" not in notice and "Order failed" not in notice


async def test_rate_limited_then_success_is_one_order(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        s.sim.faults.add("order", "EGW00201")
        await s.post(BUY)
        await s.settle()
        assert len(s.sim.orders) == 1
        assert [r.msg_cd for r in s.sim.requests if r.endpoint == "order"][0] == "EGW00201"
        assert 'moahook_kis_errors_total{msg_cd="EGW00201"} 1.0' in s.metrics.render().decode()


async def test_timeout_after_sending_is_reconciled_not_resent(tmp_path: Path) -> None:
    async with stack(tmp_path, kis_timeout=0.5) as s:
        s.sim.faults.add("order", "timeout_after_accept")
        _, answer = await s.post(BUY)
        await s.settle()
        assert len(s.sim.orders) == 1
        assert len([r for r in s.sim.requests if r.endpoint == "order"]) == 1
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.order_no == s.sim.orders[0].odno
        assert order.status in (OrderStatus.ACCEPTED, OrderStatus.FILLED)
        kinds = [(n["kind"], n["reason_key"]) for n in await s.outbox()]
        # Never "order failed": the outcome is unknown, then the verdict, with its fills.
        assert kinds == [("order_unknown", "outcome_unknown"),
                         ("order_accepted", "checked_with_kis")]
        assert "ccld" in [r.endpoint for r in s.sim.requests]
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.DONE


async def test_unreachable_kis_names_its_reason_text(tmp_path: Path) -> None:
    async with stack(tmp_path, transport=Unreachable()) as s:
        _, answer = await s.post(BUY)
        await s.settle()
        assert s.sim.orders == []
        [notice] = await s.outbox()
        assert notice["kind"] == "order_failed" and notice["reason_key"] == "kis_unreachable"
        detail = localized(notice)["detail"]
        assert "ConnectError" in detail and "could not reach KIS" not in detail
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.status is OrderStatus.FAILED


async def test_unreconciled_order_blocks_the_stock_with_a_reason_text(tmp_path: Path) -> None:
    async with stack(tmp_path, kis_timeout=0.5) as s:
        s.sim.faults.add("order", "timeout_after_accept")
        s.sim.faults.add("ccld", "APBK0919", count=50, status=200)
        _, first = await s.post(BUY)
        await s.settle()
        order = await s.storage.orders.by_alert(int(first["alert_id"]))
        assert order is not None and order.status is OrderStatus.UNKNOWN
        _, second = await s.post({**BUY, "id": "next"})
        await s.settle()
        assert len(s.sim.orders) == 1, "nothing more is sent for the stock"
        notices = [n for n in await s.outbox() if n["kind"] == "order_refused"]
        assert [n["reason_key"] for n in notices] == ["earlier_unknown"]
        assert localized(notices[0]) == {"order_id": str(order.id)}
        assert (await s.alert(second["alert_id"])).status is AlertStatus.REFUSED


async def test_next_alert_waits_for_reconciliation(tmp_path: Path) -> None:
    async with stack(tmp_path, kis_timeout=0.5) as s:
        s.sim.faults.add("order", "timeout_after_accept")
        await s.post(BUY)
        await s.post({**BUY, "quantity": "2"})
        await s.settle()
        endpoints = [r.endpoint for r in s.sim.requests if r.endpoint in ("order", "ccld")]
        assert endpoints[:3] == ["order", "ccld", "order"]
        assert [o.qty for o in s.sim.orders] == [1, 2]


async def test_slow_kis_for_one_user_does_not_delay_another(tmp_path: Path) -> None:
    other = generate_accounts(1, prefix="other")[0]
    gate = Gate(DEMO_APP_KEY)
    async with stack(tmp_path, accounts=[demo_account(), other], transport=gate) as s:
        user2 = await s.add_user(other, 2)
        await s.post(BUY)
        await asyncio.wait_for(gate.waiting.wait(), WAIT)  # user 1's order is stuck
        await s.post({**BUY, "id": "u2"}, token=user2.token)
        await s.sim.wait_for(lambda: len(s.sim.orders) == 1)
        assert s.sim.orders[0].app_key == other.app_key
        gate.release.set()
        await s.settle()
        assert [o.app_key for o in s.sim.orders] == [other.app_key, DEMO_APP_KEY]


async def test_one_symbol_of_one_user_stays_in_order(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        for qty in range(1, 11):
            await s.post({**BUY, "quantity": str(qty)})
        await s.settle()
        assert [o.qty for o in s.sim.orders] == list(range(1, 11))


# --- crash recovery -------------------------------------------------------------------


class Stop:
    """A hook that parks the pipeline at one point until the test kills it."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._never = asyncio.Event()

    async def __call__(self, alert_id: int) -> None:
        self.reached.set()
        await self._never.wait()


async def kill_and_resume(s: Stack, hook_name: str, message: dict[str, str] = BUY) -> str:
    stop = Stop()
    assert s.make_pipeline is not None
    s.pipeline = s.make_pipeline(PipelineHooks(**{hook_name: stop}))
    s.intake = StorageIntake(s.storage, s.pipeline)
    await s.intake.start()
    # Feed the stopping pipeline directly through its intake (same path as HTTP).
    from webhook_server.alert import parse_alert

    raw = json.dumps(message).encode()
    result = await s.intake.submit(s.user.token, raw, parse_alert(raw), datetime.now(UTC))
    alert_id = result.alert_id
    await asyncio.wait_for(stop.reached.wait(), WAIT)
    await s.intake.close()
    await s.pipeline.close()  # the kill: the job is cancelled where it stands
    s.pipeline = s.make_pipeline()
    report = await s.pipeline.resume()
    assert report.alerts + report.reconciling == 1
    await s.settle()
    return str(alert_id)


async def test_killed_after_storing_before_the_order_row(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        alert_id = await kill_and_resume(s, "before_order")
        assert len(s.sim.orders) == 1
        assert (await s.alert(alert_id)).status is AlertStatus.DONE
        assert await s.storage.alerts.unprocessed() == []


async def test_killed_before_sending_is_not_sent_later(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        alert_id = await kill_and_resume(s, "before_send")
        assert s.sim.orders == []
        order = await s.storage.orders.by_alert(int(alert_id))
        assert order is not None and order.status is OrderStatus.FAILED
        assert order.reason == NOT_PLACED
        assert (await s.alert(alert_id)).status is AlertStatus.FAILED
        [notice] = await s.outbox()
        assert notice["kind"] == "order_not_placed" and notice["reason"] == NOT_PLACED
        assert notice["reason_key"] == "not_placed"
        localized(notice)


async def test_killed_after_the_answer_before_recording(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        alert_id = await kill_and_resume(s, "after_answer")
        assert len(s.sim.orders) == 1
        assert len([r for r in s.sim.requests if r.endpoint == "order"]) == 1
        order = await s.storage.orders.by_alert(int(alert_id))
        assert order is not None and order.order_no == s.sim.orders[0].odno
        assert (await s.alert(alert_id)).status is AlertStatus.DONE


async def test_cancelled_during_the_request_is_unknown_then_reconciled(tmp_path: Path) -> None:
    async with stack(tmp_path, kis_timeout=30.0) as s:
        s.sim.faults.add("order", "timeout_after_accept")
        _, answer = await s.post(BUY)
        await s.sim.wait_for(lambda: len(s.sim.orders) == 1)
        await s.pipeline.close()
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.status is OrderStatus.UNKNOWN
        assert s.make_pipeline is not None
        s.pipeline = s.make_pipeline()
        await s.pipeline.resume()
        await s.settle()
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.order_no == s.sim.orders[0].odno
        assert len(s.sim.orders) == 1


async def test_resume_leaves_other_orders_of_the_same_stock_alone(tmp_path: Path) -> None:
    """Reconciliation matches by symbol/side/qty/time but never takes another order's row."""
    async with stack(tmp_path) as s:
        await s.post(BUY)
        await s.settle()
        placed = await s.storage.orders.recent(s.user.id)
        assert placed[0].order_no == s.sim.orders[0].odno
        # same symbol, side and quantity (another id: not a duplicate)
        await kill_and_resume(s, "before_send", {**BUY, "id": "second"})
        assert len(s.sim.orders) == 1
        rows = await s.storage.orders.recent(s.user.id)
        assert [r.status for r in rows][0] is OrderStatus.FAILED


# --- fuzz -----------------------------------------------------------------------------


def random_alert(rng: random.Random) -> bytes:
    if rng.random() < 0.25:  # malformed or invalid
        choices: list[bytes] = [
            b"", b"{", b"[]", b'{"ticker": 005930}', b'{"ticker":"005930"}',
            json.dumps({"ticker": "ABC", "action": "buy", "quantity": 1}).encode(),
            json.dumps({"ticker": "005930", "action": "buy"}).encode(),
            json.dumps({"ticker": "005930", "action": "buy", "quantity": "0.5"}).encode(),
            json.dumps({"ticker": "005930", "action": "buy", "quantity": 1,
                        "order_type": "limit"}).encode(),
            bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))),
        ]
        return rng.choice(choices)
    symbol = rng.choice(["005930", "000660", "035720", "KRX:069500", "A114800"])
    message: dict[str, object] = {"ticker": symbol, "action": rng.choice(["buy", "sell"])}
    mode = rng.random()
    if mode < 0.6:
        message["quantity"] = str(rng.randint(1, 3))
    elif mode < 0.8:
        message["amount"] = str(rng.choice([1000, 50_000, 200_000]))
    else:
        message["position"] = str(rng.randint(0, 12))
        message.pop("action")
    if rng.random() < 0.3:
        message["id"] = f"fz-{rng.randint(0, 400)}"
    if rng.random() < 0.2:
        message["order_type"] = "limit"
        message["price"] = str(rng.randint(1000, 300_000))
    return json.dumps(message).encode()


async def test_fuzz_full_stack_no_5xx_and_orders_match(tmp_path: Path) -> None:
    rng = random.Random(20260105)
    async with stack(tmp_path) as s:
        s.sim.account(DEMO_APP_KEY).cash = 10**12
        statuses: list[int] = []
        for _ in range(10):
            batch = [random_alert(rng) for _ in range(100)]
            answers = await asyncio.gather(*(s.post(raw) for raw in batch))
            statuses += [status for status, _ in answers]
        assert all(status < 500 for status in statuses)
        assert statuses.count(200) > 500
        await s.settle()
        alerts = await s.storage.alerts.recent(s.user.id, limit=5000)
        assert await s.storage.alerts.unprocessed() == []
        acted = [
            a for a in alerts if a.status not in (AlertStatus.REFUSED, AlertStatus.DUPLICATE)
        ]
        orders = await s.storage.orders.recent(s.user.id, limit=5000)
        assert len(orders) == len(acted)
        placed = [o for o in orders if o.order_no]
        assert len(placed) == len(s.sim.orders)
        assert {o.order_no for o in placed} == {o.odno for o in s.sim.orders}


def test_demo_constants_are_the_simulators() -> None:
    assert demo_account().app_key == DEMO_APP_KEY and demo_account().hts_id == DEMO_HTS_ID
    assert demo_account().app_secret == DEMO_APP_SECRET



# --- KIS server errors on an order: unknown, then reconciled ------------------------------


@pytest.mark.parametrize(
    ("kind", "params"), [("OPSQ0001", {}), ("http_5xx", {"status": 502})]
)
async def test_server_error_on_order_is_unknown_then_reconciled_not_placed(
    tmp_path: Path, kind: str, params: dict[str, object]
) -> None:
    """OPSQ… and a bare 5xx do not prove the order was refused: the order is recorded
    unknown, checked against the daily executions, and never sent again."""
    async with stack(tmp_path) as s:
        s.sim.faults.add("order", kind, **params)
        _, answer = await s.post(BUY)
        await s.settle()
        assert s.sim.orders == []  # the simulator's fault replaced the order
        assert len([r for r in s.sim.requests if r.endpoint == "order"]) == 1, "not re-sent"
        assert "ccld" in [r.endpoint for r in s.sim.requests]
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.status is OrderStatus.FAILED
        assert order.reason == NOT_PLACED
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.FAILED
        kinds = [(n["kind"], n["reason_key"]) for n in await s.outbox()]
        assert kinds == [("order_unknown", "outcome_unknown"),
                         ("order_not_placed", "not_placed")]
        assert 'moahook_orders_total{outcome="unknown"} 1.0' in s.metrics.render().decode()


async def test_server_error_after_the_order_was_placed_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order reached KIS but the answer was a gateway error: reconciliation finds
    exactly the one order and records it accepted."""
    from kis.errors import KisServerError

    async with stack(tmp_path) as s:
        real = s.kis.place_order
        calls: list[int] = []

        async def placed_then_opsq(*args: Any, **kwargs: Any) -> Any:
            calls.append(1)
            await real(*args, **kwargs)
            raise KisServerError(rt_cd="1", msg_cd="OPSQ0001", msg1="gateway error",
                                 tr_id="VTTC0802U", http_status=500)

        monkeypatch.setattr(s.kis, "place_order", placed_then_opsq)
        _, answer = await s.post(BUY)
        await s.settle()
        assert calls == [1] and len(s.sim.orders) == 1
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.order_no == s.sim.orders[0].odno
        assert order.status in (OrderStatus.ACCEPTED, OrderStatus.FILLED)
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.DONE


# --- cached guard inputs ------------------------------------------------------------------


async def test_guard_inputs_are_read_once_and_forgotten_on_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with stack(tmp_path) as s:
        reads: list[int] = []
        real_get = s.storage.users.get

        async def counting_get(user_id: int) -> Any:
            reads.append(user_id)
            return await real_get(user_id)

        monkeypatch.setattr(s.storage.users, "get", counting_get)
        for n in range(3):
            await s.post({**BUY, "id": f"c{n}"})
            await s.settle()
        assert len(s.sim.orders) == 3 and reads == [s.user.id]  # read once, then cached

        await s.storage.users.set_paused(s.user.id, True)  # the bot's /pause
        alert, _ = await refused_after(s, {**BUY, "id": "paused"})
        assert "paused" in alert.reason
        await s.storage.users.set_paused(s.user.id, False)
        await s.storage.key_sets.record_checks(s.user.id, PAPER, {}, validated=False)
        alert, _ = await refused_after(s, {**BUY, "id": "unvalidated"})
        assert "no validated" in alert.reason
        await s.storage.key_sets.record_checks(s.user.id, PAPER, {}, validated=True)
        await s.storage.users.set_active_environment(s.user.id, Environment.REAL)
        alert, _ = await refused_after(s, {**BUY, "id": "real"})
        assert "no validated real keys" in alert.reason
        await s.storage.users.set_active_environment(s.user.id, PAPER)
        await s.post({**BUY, "id": "again"})
        await s.settle()
        assert len(s.sim.orders) == 4


async def refused_after(s: Stack, message: dict[str, object]) -> tuple[Any, list[Any]]:
    orders_before = len(s.sim.orders)
    status, answer = await s.post(message)
    assert status == 200 and answer["status"] == "accepted"
    await s.settle()
    assert len(s.sim.orders) == orders_before
    alert = await s.alert(answer["alert_id"])
    assert alert.status is AlertStatus.REFUSED
    return alert, await s.outbox()


async def test_pipeline_forget_user_drops_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For changes made outside this process's Storage: `forget_user` rereads."""
    async with stack(tmp_path) as s:
        await s.post({**BUY, "id": "one"})
        await s.settle()
        # a change the pipeline's Storage does not see (another process, plain SQL)
        async with s.storage.db.transaction() as session:
            await session.execute(text("UPDATE users SET paused = :p"), {"p": True})
        s.pipeline.forget_user(s.user.id)
        alert, _ = await refused_after(s, {**BUY, "id": "two"})
        assert "paused" in alert.reason


# --- start-up: what a crash can leave behind ------------------------------------------


async def test_pending_order_of_a_closed_alert_is_reconciled_at_start(tmp_path: Path) -> None:
    """The request left, then recording its outcome failed and the alert was closed: the
    pending row alone must still be reconciled at start, never re-sent."""
    async with stack(tmp_path) as s:
        _, answer = await s.post(BUY)
        await s.settle()
        [placed] = s.sim.orders
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None
        # Put the row back to how such a crash leaves it.
        async with s.storage.db.transaction() as session:
            await session.execute(
                text("UPDATE orders SET status = 'pending', order_no = NULL WHERE id = :id"),
                {"id": order.id},
            )
        assert s.make_pipeline is not None
        await s.pipeline.close()
        s.pipeline = s.make_pipeline()
        report = await s.pipeline.resume()
        assert report.reconciling == 1
        await s.settle()
        again = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert again is not None and again.order_no == placed.odno
        assert len(s.sim.orders) == 1


async def test_resumed_work_waits_for_its_gate_and_new_alerts_wait_behind_it(
    tmp_path: Path,
) -> None:
    async with stack(tmp_path) as s:
        alert_id = await kill_and_resume_gated(s)
        gate_open = asyncio.Event()
        entered = asyncio.Event()

        async def gate() -> None:
            entered.set()
            await gate_open.wait()

        report = await s.pipeline.resume(gate=gate)
        assert report.alerts == 1
        await asyncio.wait_for(entered.wait(), WAIT)
        # A new alert for the same stock arrives meanwhile: it queues behind.
        from webhook_server.alert import parse_alert

        intake = StorageIntake(s.storage, s.pipeline)
        raw = json.dumps({**BUY, "id": "later"}).encode()
        await intake.submit(s.user.token, raw, parse_alert(raw), datetime.now(UTC))
        assert s.sim.orders == []
        gate_open.set()
        await s.settle()
        assert len(s.sim.orders) == 2
        first = await s.storage.orders.by_alert(int(alert_id))
        assert first is not None and first.order_no == s.sim.orders[0].odno


async def kill_and_resume_gated(s: Stack) -> str:
    """Store an alert with a pipeline that stops before the order row, then kill it and
    leave a fresh pipeline (not yet resumed) in place."""
    stop = Stop()
    assert s.make_pipeline is not None
    await s.pipeline.close()
    s.pipeline = s.make_pipeline(PipelineHooks(before_order=stop))
    s.intake = StorageIntake(s.storage, s.pipeline)
    from webhook_server.alert import parse_alert

    raw = json.dumps(BUY).encode()
    result = await s.intake.submit(s.user.token, raw, parse_alert(raw), datetime.now(UTC))
    await asyncio.wait_for(stop.reached.wait(), WAIT)
    await s.pipeline.close()
    s.pipeline = s.make_pipeline()
    return str(result.alert_id)


async def test_unrecorded_answer_blocks_the_stock_until_reconciled(tmp_path: Path) -> None:
    """KIS accepted the order but recording it failed (a database error, say): the order
    row stays `pending`, so nothing more is sent for the stock before it is reconciled —
    while KIS cannot be asked, later alerts are refused; at restart it is settled."""
    failed_once: list[int] = []

    async def recording_fails(alert_id: int) -> None:
        if not failed_once:
            failed_once.append(alert_id)
            raise RuntimeError("database went away")

    async with stack(tmp_path, hooks=PipelineHooks(after_answer=recording_fails)) as s:
        _, first = await s.post(BUY)
        await s.settle()
        assert len(s.sim.orders) == 1
        order = await s.storage.orders.by_alert(int(first["alert_id"]))
        assert order is not None and order.status is OrderStatus.PENDING
        s.sim.faults.add("ccld", "http_5xx", count=1000)  # KIS's executions unreachable
        _, second = await s.post({**BUY, "id": "next"})
        await s.settle()
        assert len(s.sim.orders) == 1, "nothing more is sent before the first is reconciled"
        [refused] = [n for n in await s.outbox() if n["kind"] == "order_refused"]
        assert refused["reason_key"] == "earlier_unknown"
        assert (await s.alert(second["alert_id"])).status is AlertStatus.REFUSED
        # On start the pending order is found at KIS; the stock is free again.
        s.sim.faults.clear()
        assert s.make_pipeline is not None
        await s.pipeline.close()
        s.pipeline = s.make_pipeline()
        assert (await s.pipeline.resume()).reconciling == 1
        await s.settle()
        order = await s.storage.orders.by_alert(int(first["alert_id"]))
        assert order is not None and order.order_no == s.sim.orders[0].odno
        assert (await s.alert(first["alert_id"])).status is AlertStatus.DONE


async def test_the_next_alert_settles_a_blocked_stock_first(tmp_path: Path) -> None:
    """A block does not last until a restart: the next alert for the stock reconciles the
    earlier order first, and only then is its own order sent."""
    failed_once: list[int] = []

    async def recording_fails(alert_id: int) -> None:
        if not failed_once:
            failed_once.append(alert_id)
            raise RuntimeError("database went away")

    async with stack(tmp_path, hooks=PipelineHooks(after_answer=recording_fails)) as s:
        _, first = await s.post(BUY)
        await s.settle()
        _, second = await s.post({**BUY, "id": "next"})
        await s.settle()
        assert len(s.sim.orders) == 2
        endpoints = [r.endpoint for r in s.sim.requests if r.endpoint in ("order", "ccld")]
        assert endpoints[:3] == ["order", "ccld", "order"], endpoints
        order = await s.storage.orders.by_alert(int(first["alert_id"]))
        assert order is not None and order.order_no == s.sim.orders[0].odno
        assert (await s.alert(second["alert_id"])).status is AlertStatus.DONE


class PriceWithoutPrice(httpx.AsyncBaseTransport):
    """KIS answers the price inquiry with success but a current price of 0."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("inquire-price"):
            answer = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "정상처리 되었습니다.",
                      "output": {"stck_prpr": "0", "aspr_unit": "0"}}
            return httpx.Response(200, json=answer)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_price_of_zero_fails_the_alert_with_a_notice(tmp_path: Path) -> None:
    """A success answer without a usable price is a failed inquiry the chat hears about,
    not an internal error that only `/log` shows."""
    async with stack(tmp_path, transport=PriceWithoutPrice()) as s:
        _, answer = await s.post({"ticker": "005930", "action": "buy", "amount": "100000"})
        await s.settle()
        assert s.sim.orders == []
        [notice] = await s.outbox()
        assert notice["kind"] == "order_failed" and notice["reason_key"] == "inquiry_failed"
        localized(notice)
        alert = await s.alert(answer["alert_id"])
        assert alert.status is AlertStatus.FAILED and "internal error" not in alert.reason


async def test_reconcile_ignores_an_earlier_days_order_with_the_same_number(
    tmp_path: Path,
) -> None:
    """KIS numbers orders per day: a number an order of ours had on another day does
    not make today's execution "another order's"."""
    from storage.repositories.orders import Orders

    async with stack(tmp_path, kis_timeout=0.5) as s:
        yesterday = datetime.now(UTC) - timedelta(days=1)
        earlier = await s.storage.alerts.accept(s.user.id, "{}", None, "old", yesterday)
        old = await Orders(s.storage.db, clock=lambda: yesterday).create_pending(
            earlier.alert_id, user_id=s.user.id, environment=PAPER, symbol="005930",
            side="buy", order_type="market", quantity=1,
        )
        await s.storage.orders.record_accepted(old, "0000000001")
        s.sim.faults.add("order", "timeout_after_accept")
        _, answer = await s.post(BUY)
        await s.settle()
        assert [o.odno for o in s.sim.orders] == ["0000000001"]
        order = await s.storage.orders.by_alert(int(answer["alert_id"]))
        assert order is not None and order.order_no == "0000000001"
        assert order.status in (OrderStatus.ACCEPTED, OrderStatus.FILLED)
        assert (await s.alert(answer["alert_id"])).status is AlertStatus.DONE


async def test_log_lines_on_an_alert_path_name_the_user_and_the_alert(tmp_path: Path) -> None:
    """The pipeline's job, and the KIS calls it makes, log with the alert's ids."""
    import io

    from moahook.log import make_handler

    stream = io.StringIO()
    handler = make_handler(None, "json", stream)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    try:
        async with stack(tmp_path) as s:
            s.sim.faults.add("balance", "APBK0919", status=200, msg1="balance refused")
            _, answer = await s.post({"ticker": "005930", "action": "sell", "quantity": "1"})
            await s.settle()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    [failed] = [e for e in entries if "KIS inquiry failed" in e["message"]]
    assert failed["alert_id"] == int(answer["alert_id"])
    assert failed["user_id"] == s.user.id


# --- the dry run behind /test -------------------------------------------------------------


def order_requests(s: Stack) -> list[Any]:
    return [r for r in s.sim.requests if r.endpoint == "order"]


async def test_dry_run_sizes_with_fresh_figures_and_sends_no_order(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        body = json.dumps({"ticker": "KRX:000660", "action": "buy", "amount": "500000"})
        (notice,) = await s.pipeline.dry_run(s.user.id, body.encode())
        assert notice.kind is NoticeKind.ORDER_ACCEPTED
        assert (notice.symbol, notice.side, notice.quantity) == ("000660", "buy", 2)
        assert notice.reason_params["current_price"] == "185,000"
        assert "market_closed" not in notice.reason_params
        assert [r.endpoint for r in s.sim.requests if r.endpoint == "price"] == ["price"]
        assert order_requests(s) == [] and s.sim.orders == []
        # Nothing was recorded either: no alert, no order, no chat notice.
        assert await s.storage.alerts.recent(s.user.id) == []
        assert await s.outbox() == []


async def test_dry_run_says_why_not(tmp_path: Path) -> None:
    async with stack(tmp_path) as s:
        sell = json.dumps({"ticker": "035720", "action": "sell", "quantity": "5"}).encode()
        (not_held,) = await s.pipeline.dry_run(s.user.id, sell)
        assert not_held.kind is NoticeKind.ORDER_REFUSED and not_held.reason_key == "not_held"
        (invalid,) = await s.pipeline.dry_run(s.user.id, b'{"ticker": 005930}')
        assert invalid.kind is NoticeKind.ORDER_REFUSED
        assert invalid.reason_key == "invalid_alert" and "005930" in invalid.reason
        await s.storage.users.set_paused(s.user.id, True)
        (paused,) = await s.pipeline.dry_run(s.user.id, json.dumps(BUY).encode())
        assert paused.reason_key == "paused"
        assert order_requests(s) == []


async def test_dry_run_outside_hours_shows_the_order_and_the_closed_session(
    tmp_path: Path,
) -> None:
    saturday = datetime(2026, 5, 9, 3, 0, tzinfo=UTC)
    async with stack(tmp_path, market=MarketClock(enforce=True), clock=lambda: saturday) as s:
        (notice,) = await s.pipeline.dry_run(s.user.id, json.dumps(BUY).encode())
        assert notice.kind is NoticeKind.ORDER_ACCEPTED and notice.quantity == 1
        assert "closed" in notice.reason_params["market_closed"]
        text = format_dry_run(notice, "ko")
        assert "지금 받으면 주문합니다" in text and "KRX 정규장 시간이 아닙니다" in text
        assert order_requests(s) == []
