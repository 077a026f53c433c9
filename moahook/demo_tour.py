"""The demo's script: start the stack, walk one user through it, check each outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import httpx
from aiohttp import web

from bot.standin import BotApiStandIn, ChatMessage, SimUser
from bot.standin.webapp import init_data, launch_url, web_app_user
from bot.texts import BUTTON_PAPER, BUTTON_REAL
from kis.env import KST
from kis.sim import KisSimulator, SimAccount, demo_account
from kis.sim.orders import SimOrder
from kis.sim.overseas import UsOrder
from moahook.demo_report import AlertExchange, FillRow, OrderRow
from moahook.demo_steps import StepFailed, Steps
from moahook.log import SecretRegistry
from moahook.services import Services, build_app, open_services
from moahook.settings import Settings
from webhook_server.app import make_runner

USER_ID = 1001
USER_NAME = "지민"
CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")

# What a notice about an order's outcome starts with (bot/texts.py, Korean).
FILLED = "✅ 체결 ("
ACCEPTED = "📨 주문 접수"
REFUSED = "🚫 주문 거절"
OUTCOMES = (FILLED, REFUSED, "⚠️ 주문 실패", "⛔ KIS 거부", "🔸 일부 체결")


@dataclass(frozen=True, slots=True)
class DemoAlert:
    title: str
    symbol: str
    body: str
    expect: str  # FILLED or REFUSED
    detail: str  # must appear in the outcome notice


ALERTS = (
    DemoAlert(
        "alert 1, quantity mode: buy 3 × 005930",
        "005930",
        '{"ticker":"KRX:005930","action":"buy","quantity":"3","id":"demo-1",'
        '"comment":"데모 1: 수량"}',
        FILLED,
        "매수 3주",
    ),
    DemoAlert(
        "alert 2, amount mode: buy ₩500,000 of 000660",
        "000660",
        '{"ticker":"KRX:000660","action":"buy","amount":"500000","id":"demo-2",'
        '"comment":"데모 2: 금액"}',
        FILLED,
        "매수 2주",
    ),
    DemoAlert(
        "alert 3, US stock: buy 2 × NASDAQ:AAPL (a marketable limit in USD)",
        "AAPL",
        '{"ticker":"NASDAQ:AAPL","action":"buy","quantity":"2","id":"demo-us",'
        '"comment":"데모: 미국 주식"}',
        FILLED,
        "매수 2주 @ $",
    ),
    DemoAlert(
        "alert 4: sell 5 × 035720, not held → refused",
        "035720",
        '{"ticker":"KRX:035720","action":"sell","quantity":"5","id":"demo-3",'
        '"comment":"데모 3: 거절"}',
        REFUSED,
        "보유하지 않은 종목",
    ),
)

STEP_TITLES = (
    "start the KIS simulator, the Bot API stand-in and moahook (web server, bot, SQLite)",
    "/start → greeting with the webhook URL",
    "/keys → App Key (the bot deletes the message)",
    "App Secret (the bot deletes the message)",
    "account 12345678-01 and HTS ID → environment buttons",
    f"press [ {BUTTON_PAPER} ] → 2FA code from the bot",
    "send the 2FA code → checklist ✅✅✅",
    "/webhook → URL and alert templates",
    *(f"{alert.title}" for alert in ALERTS),
    "/orders → the three orders filled; storage agrees with the simulator",
    "dashboard: GET /app, sign in with Telegram initData → the three orders in the orders view",
    "shut down cleanly (no tasks left, temporary directory removed)",
)


@dataclass
class Report:
    timeline: list[ChatMessage] = field(default_factory=list)
    originals: dict[int, ChatMessage] = field(default_factory=dict)
    alerts: list[AlertExchange] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    fills: list[FillRow] = field(default_factory=list)


class Tour:
    """Holds everything the tour starts, so it can all be closed whatever happened."""

    def __init__(
        self,
        data_dir: Path,
        registry: SecretRegistry,
        *,
        wait_s: float,
        prepare: Callable[[KisSimulator, BotApiStandIn], None] | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._registry = registry
        self._wait_s = wait_s
        self._prepare = prepare
        self._exit = contextlib.AsyncExitStack()
        self._account: SimAccount = demo_account()
        self._sim: KisSimulator | None = None
        self._standin: BotApiStandIn | None = None
        self.dashboard_link = ""
        self._services: Services | None = None
        self._http: httpx.AsyncClient | None = None
        self._user: SimUser | None = None
        self._hook_path = ""
        self._public_url = ""
        self._exchanges: list[AlertExchange] = []
        # Messages as first seen, where the bot edits them later (the environment buttons).
        self._originals: dict[int, ChatMessage] = {}
        registry.add(self._account.app_key, self._account.app_secret)

    # -- the script ------------------------------------------------------------------
    async def run(self, steps: Steps) -> None:
        titles = iter(STEP_TITLES)
        async with steps.step(next(titles)):
            await self._start()
        async with steps.step(next(titles)):
            await self._greeting()
        async with steps.step(next(titles)):
            await self._say("/keys", "1/5")
            await self._send_secret(self._account.app_key, "2/5")
        async with steps.step(next(titles)):
            await self._send_secret(self._account.app_secret, "3/5")
        async with steps.step(next(titles)):
            await self._say(self._account.account_number, "4/5")
            prompt = await self._say(self._account.hts_id, "5/5")
            self._originals[prompt.id] = prompt
            await self._env_buttons(prompt)
        async with steps.step(next(titles)):
            code = await self._choose_paper()
        async with steps.step(next(titles)):
            await self._confirm(code)
        async with steps.step(next(titles)):
            await self._webhook()
        for alert in ALERTS:
            async with steps.step(next(titles)):
                await self._alert(alert)
        async with steps.step(next(titles)):
            await self._orders()
        async with steps.step(next(titles)):
            await self._dashboard()

    async def _start(self) -> None:
        sim = await self._exit.enter_async_context(KisSimulator())
        standin = await self._exit.enter_async_context(BotApiStandIn())
        self._sim, self._standin = sim, standin
        if self._prepare is not None:
            self._prepare(sim, standin)
        # Bound first, so the URL the bot shows is the real one.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._exit.callback(sock.close)
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        self._public_url = f"http://127.0.0.1:{port}"
        # An explicit mapping: neither the user's .env nor their MOAHOOK_* variables.
        settings = Settings.from_mapping(
            {
                **sim.env_vars(),
                "MOAHOOK_BOT_TOKEN": standin.token,
                "MOAHOOK_TELEGRAM_API_URL": standin.base_url,
                "MOAHOOK_HOST": "127.0.0.1",
                "MOAHOOK_PORT": str(port),
                "MOAHOOK_PUBLIC_URL": self._public_url,
                "MOAHOOK_DATA_DIR": str(self._data_dir),
                "MOAHOOK_MARKET_HOURS": "off",
                "MOAHOOK_LOG_LEVEL": "WARNING",
            }
        )
        services = await open_services(settings, self._registry)
        self._exit.push_async_callback(services.close)
        self._services = services
        app, bot_started = build_app(services)
        runner = make_runner(app, shutdown_timeout=2.0)
        await runner.setup()
        self._exit.push_async_callback(runner.cleanup)
        await web.SockSite(runner, sock).start()
        await asyncio.wait_for(bot_started.wait(), self._wait_s)
        http = httpx.AsyncClient(base_url=self._public_url, timeout=self._wait_s, trust_env=False)
        self._exit.push_async_callback(http.aclose)
        self._http = http
        health = await http.get("/healthz")
        if health.status_code != 200:
            raise StepFailed(
                f"expected GET /healthz → 200, got {health.status_code} {health.text.strip()}"
            )
        self._user = standin.user(USER_ID, USER_NAME, language_code="ko")

    async def _greeting(self) -> None:
        greeting = await self._say("/start", "안녕하세요, moahook")
        match = re.search(re.escape(self._public_url) + r"/hook/([A-Za-z0-9_-]+)", greeting.text)
        if match is None:
            raise StepFailed("expected the webhook URL in the greeting, it is not there")
        if "/keys" not in greeting.text or "/webhook" not in greeting.text:
            raise StepFailed("expected the three steps (/keys, /webhook) in the greeting")
        self._hook_path = f"/hook/{match.group(1)}"

    async def _send_secret(self, value: str, next_prompt: str) -> None:
        user = self._chat()
        mark = user.mark()
        message_id = await user.send_text(value)
        await user.wait_for_deleted(message_id, self._wait_s)
        await user.wait_for_bot_message("지웠습니다", self._wait_s, after=mark)
        await user.wait_for_bot_message(next_prompt, self._wait_s, after=mark)

    @staticmethod
    async def _env_buttons(prompt: ChatMessage) -> None:
        labels = prompt.button_labels()
        if labels[:2] != [BUTTON_PAPER, BUTTON_REAL]:
            raise StepFailed(f"expected the buttons {BUTTON_PAPER}, {BUTTON_REAL}; got {labels}")

    async def _choose_paper(self) -> str:
        user = self._chat()
        mark = user.mark()
        await user.press(BUTTON_PAPER)
        code_message = await user.wait_for_bot_message("인증 코드", self._wait_s, after=mark)
        await user.wait_for_bot_message("6자리", self._wait_s, after=mark)
        found = CODE.search(code_message.text)
        if found is None:
            raise StepFailed("expected a 6-digit code in the bot's code message")
        return found.group(1)

    async def _confirm(self, code: str) -> None:
        user = self._chat()
        mark = user.mark()
        await user.send_text(code)
        checklist = await user.wait_for_bot_message(
            lambda m: "KIS 점검" in m.text and "⏳" not in m.text, self._wait_s, after=mark
        )
        if checklist.text.count("✅") != 3 or "❌" in checklist.text:
            raise StepFailed(f"expected three ✅ in the checklist, got: {_one_line(checklist)}")

    async def _webhook(self) -> None:
        shown = await self._say("/webhook", "웹훅 주소")
        if self._public_url + self._hook_path not in shown.text:
            raise StepFailed("expected the same webhook URL as in the greeting")
        if '"ticker"' not in shown.text or '"action"' not in shown.text:
            raise StepFailed("expected alert message templates with quoted placeholders")

    async def _alert(self, alert: DemoAlert) -> None:
        user, http = self._chat(), self._client()
        mark = user.mark()
        # Exactly as TradingView sends it: the message as a text/plain body, no other headers.
        answer = await http.post(
            self._hook_path, content=alert.body.encode(),
            headers={"content-type": "text/plain; charset=utf-8"},
        )
        self._exchanges.append(
            AlertExchange(alert.title, alert.body, answer.status_code, answer.text.strip())
        )
        if answer.status_code != 200 or _json_field(answer.text, "status") != "accepted":
            raise StepFailed(
                f"expected 200 accepted, got {answer.status_code} {answer.text.strip()}"
            )
        outcome = await user.wait_for_bot_message(
            lambda m: alert.symbol in m.text and m.text.startswith(OUTCOMES),
            self._wait_s,
            after=mark,
        )
        if not outcome.text.startswith(alert.expect) or alert.detail not in outcome.text:
            raise StepFailed(
                f"expected {alert.expect.strip(' (')} … {alert.detail} for {alert.symbol}; "
                f"the chat shows: {_one_line(outcome)}"
            )
        if alert.expect == FILLED:
            await user.wait_for_bot_message(
                lambda m: m.text.startswith(ACCEPTED) and alert.symbol in m.text,
                self._wait_s,
                after=mark,
            )

    async def _orders(self) -> None:
        listing = await self._say("/orders", "최근 주문")
        for filled in ("체결 3/3주", "체결 2/2주", "NASDAQ:AAPL", "평균 $"):
            if filled not in listing.text:
                raise StepFailed(f"expected {filled!r} in /orders, got: {_one_line(listing)}")
        rows = await self._order_rows()
        sim = self._simulator()
        at_kis = len(sim.orders) + len(sim.us_orders)
        if len(rows) != 3 or at_kis != 3:
            raise StepFailed(
                f"expected 3 orders in storage and at KIS (the refused alert never reaches "
                f"KIS), got {len(rows)} and {at_kis}"
            )
        for row in rows:
            if row.status != "filled" or row.sim_status != "filled":
                raise StepFailed(
                    f"expected {row.symbol} filled in storage and at KIS, got "
                    f"{row.status}/{row.sim_status}"
                )

    async def _dashboard(self) -> None:
        """The web dashboard as the Mini App: signed in with initData signed by "Telegram"
        (the stand-in's bot token), the orders view read through its API."""
        http, standin = self._client(), self._standin
        if standin is None:
            raise StepFailed("the Bot API stand-in is not running")
        page = await http.get("/app")
        if page.status_code != 200 or "app.js" not in page.text:
            raise StepFailed(f"expected GET /app → the page, got {page.status_code}")
        data = init_data(standin.token, web_app_user(USER_ID, USER_NAME))
        signed_in = await http.post("/app/api/session", json={"init_data": data})
        if signed_in.status_code != 200:
            raise StepFailed(
                f"expected sign-in with initData → 200, got {signed_in.status_code} "
                f"{signed_in.text.strip()}"
            )
        activity = await http.get("/app/api/activity")
        orders = activity.json().get("orders", []) if activity.status_code == 200 else []
        filled = sorted(o["symbol"] for o in orders if o.get("status") == "filled")
        expected = sorted(alert.symbol for alert in ALERTS if alert.expect == FILLED)
        if filled != expected:
            raise StepFailed(f"expected {expected} filled in the orders view, got {filled}")
        http.cookies.clear()  # the link printed below signs in afresh
        self.dashboard_link = launch_url(f"{self._public_url}/app", data, platform="unknown")

    # -- helpers --------------------------------------------------------------------
    async def _say(self, text: str, expect: str) -> ChatMessage:
        user = self._chat()
        mark = user.mark()
        await user.send_text(text)
        return await user.wait_for_bot_message(expect, self._wait_s, after=mark)

    def _chat(self) -> SimUser:
        if self._user is None:
            raise StepFailed("the chat is not open (the start-up step did not finish)")
        return self._user

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            raise StepFailed("the web server is not up")
        return self._http

    def _simulator(self) -> KisSimulator:
        if self._sim is None:
            raise StepFailed("the simulator is not running")
        return self._sim

    async def _order_rows(self) -> list[OrderRow]:
        services, sim = self._services, self._sim
        if services is None or sim is None:
            return []
        user = await services.storage.users.by_telegram_id(USER_ID)
        if user is None:
            return []
        at_kis: dict[str, SimOrder | UsOrder] = {order.odno: order for order in sim.orders}
        at_kis.update({order.odno: order for order in sim.us_orders})
        rows = []
        for order in reversed(await services.storage.orders.recent(user.id, 10)):
            sim_order = at_kis.get(order.order_no or "")
            average = order.filled_amount / order.filled_qty if order.filled_qty else None
            rows.append(
                OrderRow(
                    symbol=order.symbol,
                    name=order.name or (sim_order.name if sim_order else ""),
                    side=order.side,
                    quantity=order.quantity,
                    order_type=order.order_type,
                    price=_average(average, order.currency),
                    status=order.status.value,
                    sim_status=_sim_status(sim_order),
                    order_no=order.order_no or "-",
                )
            )
        return rows

    async def _fill_rows(self) -> list[FillRow]:
        services = self._services
        if services is None:
            return []
        user = await services.storage.users.by_telegram_id(USER_ID)
        if user is None:
            return []
        rows = []
        for order in reversed(await services.storage.orders.recent(user.id, 10)):
            for fill in await services.storage.fills.for_order(order.id):
                at = fill.filled_at
                if at.tzinfo is None:
                    at = at.replace(tzinfo=UTC)
                rows.append(
                    FillRow(
                        order_no=fill.order_no,
                        symbol=order.symbol,
                        quantity=fill.quantity,
                        price=fill.price,
                        time=at.astimezone(KST).strftime("%H:%M:%S KST"),
                    )
                )
        return rows

    # -- after the script -------------------------------------------------------------
    async def report(self) -> Report:
        """What happened, as far as it got (also after a failure)."""
        report = Report(alerts=list(self._exchanges), originals=dict(self._originals))
        if self._user is not None:
            report.timeline = self._user.timeline
        with contextlib.suppress(Exception):
            report.orders = await self._order_rows()
            report.fills = await self._fill_rows()
        return report

    async def shut_down(self, remove_data_dir: Callable[[], None]) -> None:
        """The shutdown step: close everything, then prove nothing was left behind."""
        await self.close()
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        if others:
            _done, pending = await asyncio.wait(others, timeout=self._wait_s)
            if pending:
                names = ", ".join(sorted(task.get_name() for task in pending))
                raise StepFailed(f"expected no tasks left after shutdown, still running: {names}")
        remove_data_dir()
        if self._data_dir.exists():
            raise StepFailed(f"expected {self._data_dir} removed, it is still there")

    async def close(self) -> None:
        """Idempotent: closes whatever was started, newest first."""
        await self._exit.aclose()


def _one_line(message: ChatMessage) -> str:
    return " / ".join(line for line in message.text.split("\n") if line.strip())


def _json_field(text: str, name: str) -> object:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


__all__ = ["ALERTS", "STEP_TITLES", "DemoAlert", "Report", "Tour"]


def _average(average: Decimal | None, currency: str) -> str:
    if average is None:
        return "-"
    return f"${average:,.2f}" if currency == "USD" else f"{average:,.0f}"


def _sim_status(order: SimOrder | UsOrder | None) -> str:
    if order is None:
        return "-"
    if isinstance(order, UsOrder):
        return "filled" if order.remaining == 0 and order.filled_qty else "open"
    return order.status.value
