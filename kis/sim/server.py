"""`KisSimulator`: accounts, market, broker, faults and the REST + WebSocket servers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType

from aiohttp import web

from kis.env import BALANCE_PAGE_ROWS, EXECUTIONS_PAGE_ROWS, OVERSEAS_TR_IDS, TR_IDS, Environment
from kis.sim.accounts import SimAccount, demo_account, demo_real_account
from kis.sim.clock import Clock
from kis.sim.codes import KisRefusal, refused
from kis.sim.faults import Faults
from kis.sim.market import DEFAULT_INSTRUMENTS, Instrument, Market
from kis.sim.notice import notice_fields
from kis.sim.orders import MARKET_LIKE, Broker, Notice, OrderStatus, SimOrder
from kis.sim.overseas import DEFAULT_US_INSTRUMENTS, UsBook, UsInstrument, UsNotice, UsOrder
from kis.sim.overseas import notice_fields as us_notice_fields
from kis.sim.ratelimit import SlidingWindow
from kis.sim.reservations import ReservationBook, SimReservation
from kis.sim.rest import RecordedRequest, RestApi
from kis.sim.tokens import Credentials
from kis.sim.ws import WsServer

DEFAULT_RATE_LIMITS = {Environment.REAL: 20, Environment.PAPER: 2}


@dataclass(frozen=True, slots=True)
class SentNotice:
    """A fill-notice record the simulator produced (sent to every subscribed session)."""

    env: Environment
    hts_id: str
    fields: list[str]
    delivered_to: int
    tr_id: str = ""


class KisSimulator:
    """A local KIS: REST under `/real` and `/paper` on one port, WebSocket on another."""

    def __init__(
        self,
        accounts: Iterable[SimAccount] | None = None,
        *,
        clock: Clock | None = None,
        rate_limits: dict[Environment, int] | None = None,
        token_interval_s: float = 60.0,
        fill_delay_s: float = 0.0,
        instruments: Iterable[Instrument] | None = None,
        us_instruments: Iterable[UsInstrument] | None = None,
        balance_page_rows: dict[Environment, int] | None = None,
        executions_page_rows: dict[Environment, int] | None = None,
        ping_interval_s: float = 30.0,
        pong_timeout_s: float = 100.0,
        ws_slot_hold_s: float = 0.0,
        wrong_hts_id: str = "refuse",
        split_fill_qty: int = 10,
        fill_lots: int = 0,
    ) -> None:
        if wrong_hts_id not in ("refuse", "silent_drop"):
            raise ValueError("wrong_hts_id must be 'refuse' or 'silent_drop'")
        self._clock: Clock = clock or time.time
        self.market = Market(tuple(instruments) if instruments else DEFAULT_INSTRUMENTS)
        self._accounts: dict[str, SimAccount] = {}
        self.credentials = Credentials(self.lookup, self._clock, token_interval_s=token_interval_s)
        self.broker = Broker(
            self.market, self._clock, self._on_notice, split_fill_qty=split_fill_qty,
            fill_lots=fill_lots,
        )
        self.us = UsBook(
            tuple(us_instruments) if us_instruments else DEFAULT_US_INSTRUMENTS,
            self._clock, self.broker.new_odno, self._on_us_notice,
        )
        self.reservations = ReservationBook(self.market, self._clock)
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.notices: list[SentNotice] = []
        self.rate_limits = {**DEFAULT_RATE_LIMITS, **(rate_limits or {})}
        self._window = SlidingWindow(self._clock)
        self.fill_delay_s = fill_delay_s
        self.balance_page_rows = {**BALANCE_PAGE_ROWS, **(balance_page_rows or {})}
        self.executions_page_rows = {**EXECUTIONS_PAGE_ROWS, **(executions_page_rows or {})}
        self.market_open = True
        # The next n fill records are never sent (PAPER notices go missing: KIS.md 11).
        self.lose_fill_notices = 0
        self.stopping = asyncio.Event()
        self.ws = WsServer(
            self,
            ping_interval_s=ping_interval_s,
            pong_timeout_s=pong_timeout_s,
            slot_hold_s=ws_slot_hold_s,
            wrong_hts_id=wrong_hts_id,
        )
        self._changed = asyncio.Event()
        self._timers: set[asyncio.TimerHandle] = set()
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0
        for account in [demo_account(), demo_real_account()] if accounts is None else accounts:
            self.add_account(account)

    # -- accounts -------------------------------------------------------------------------
    def add_account(self, account: SimAccount) -> SimAccount:
        if account.app_key in self._accounts:
            raise ValueError("an account with this app key exists already")
        for symbol in account.holdings:
            quote = self.market.get(symbol)
            if quote is not None:
                account.avg_prices.setdefault(symbol, float(quote.instrument.base_price))
        for symbol in account.us_holdings:
            inst = self.us.instruments.get(symbol)
            if inst is not None:
                account.us_avg.setdefault(symbol, inst.base_price)
        self._accounts[account.app_key] = account
        return account

    def add_accounts(self, accounts: Iterable[SimAccount]) -> None:
        for account in accounts:
            self.add_account(account)

    def lookup(self, app_key: str) -> SimAccount | None:
        return self._accounts.get(app_key)

    def account(self, app_key: str) -> SimAccount:
        """The live state of the account behind `app_key`."""
        account = self._accounts.get(app_key)
        if account is None:
            raise KeyError("no account with this app key")
        return account

    @property
    def accounts(self) -> list[SimAccount]:
        return list(self._accounts.values())

    # -- records ---------------------------------------------------------------------------
    @property
    def orders(self) -> list[SimOrder]:
        return self.broker.orders

    def order(self, odno: str) -> SimOrder:
        order = self.broker.order(odno)
        if order is None:
            raise KeyError(f"no order {odno}")
        return order

    @property
    def token_issuances(self) -> dict[str, int]:
        """Successful token answers per app key (each one is a KakaoTalk message at KIS)."""
        return self.credentials.issuances

    def pongs_received(self, app_key: str) -> int:
        """PINGPONG frames echoed back identically on this app key's connection."""
        return self.ws.pongs.get(app_key, 0)

    def pings_sent(self, app_key: str) -> int:
        return self.ws.pings.get(app_key, 0)

    def ws_connected(self, app_key: str) -> bool:
        return self.ws.connected(app_key)

    def ws_connection_count(self) -> int:
        return self.ws.connection_count()

    # -- controls ---------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    def price(self, symbol: str) -> int:
        return self.market.quote(symbol).price

    def set_price(self, symbol: str, price: int) -> list[SimOrder]:
        """Move a price; resting limit orders that it crosses fill. Returns those orders."""
        self.market.move(symbol, price)
        filled = self.broker.match(symbol)
        self.notify_changed()
        return filled

    def us_price(self, symbol: str) -> Decimal:
        return self.us.prices[symbol]

    def set_us_price(self, symbol: str, price: Decimal | str) -> list[UsOrder]:
        """Move a US price (USD); open orders it crosses fill. Returns those orders."""
        if symbol not in self.us.prices:
            raise KeyError(f"unknown US symbol {symbol!r}")
        self.us.prices[symbol] = Decimal(price)
        filled = self.us.match(symbol)
        self.notify_changed()
        return filled

    @property
    def us_orders(self) -> list[UsOrder]:
        return self.us.orders

    def process_reservations(self) -> list[SimReservation]:
        """The open: waiting reservation orders become orders (KIS sends no notice of
        this; the orders' own fill notices follow as for any order)."""
        done = self.reservations.process(
            self.lookup, self.broker, lambda order: self.after_order(order, reject=False)
        )
        self.notify_changed()
        return done

    def set_suspended(self, symbol: str, suspended: bool = True) -> None:
        self.market.quote(symbol).suspended = suspended

    def expire_tokens(self, app_key: str | None = None) -> int:
        """Expire issued tokens now (next use answers EGW00123)."""
        return self.credentials.expire(app_key)

    def drop_ws(self, app_key: str | None = None) -> int:
        """Drop WebSocket connections without a close frame; returns how many."""
        return self.ws.drop(app_key)

    def check_market_open(self) -> None:
        if not self.market_open:
            raise refused("APBK0001")

    def allow_request(self, account: SimAccount) -> bool:
        return self._window.allow(account.app_key, self.rate_limits[account.env])

    @staticmethod
    def gt_uid() -> str:
        return secrets.token_hex(16)

    # -- order follow-up ---------------------------------------------------------------------
    def after_order(self, order: SimOrder, *, reject: bool) -> None:
        """Schedule what happens to an accepted order: refusal, market fill or matching."""
        if reject:
            self._later(lambda: self.broker.reject(order))
        elif order.ord_dvsn in MARKET_LIKE:
            self._later(lambda: self.broker.execute_market(order))
        else:
            self._later(lambda: self.broker.match(order.symbol, incoming=order))
        self.notify_changed()

    def after_us_order(self, order: UsOrder, *, reject: bool) -> None:
        """A US order fills at once when the current price crosses it (MOO/MOC always)."""
        if reject:
            self._later(lambda: self.us.reject(order))
        else:
            self._later(lambda: self.us.match(order.symbol))
        self.notify_changed()

    def _later(self, action: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def run() -> None:
            if handle is not None:
                self._timers.discard(handle)
            action()
            self.notify_changed()

        handle = loop.call_later(self.fill_delay_s, run)
        self._timers.add(handle)

    def _on_notice(self, account: SimAccount, notice: Notice) -> None:
        tr_id = TR_IDS[account.env].fill_notice
        fields = notice_fields(account, notice)
        if notice.cntg_yn == "2" and self.lose_fill_notices > 0:
            self.lose_fill_notices -= 1
            self.notices.append(SentNotice(account.env, account.hts_id, fields, 0, tr_id))
            return
        self._publish(account, tr_id, fields)

    def _on_us_notice(self, account: SimAccount, notice: UsNotice) -> None:
        tr_id = OVERSEAS_TR_IDS[account.env].fill_notice
        self._publish(account, tr_id, us_notice_fields(account, notice))

    def _publish(self, account: SimAccount, tr_id: str, fields: list[str]) -> None:
        delivered = self.ws.publish(account.env, account.hts_id, fields, tr_id)
        self.notices.append(SentNotice(account.env, account.hts_id, fields, delivered, tr_id))

    # -- waiting (tests) ----------------------------------------------------------------------
    def notify_changed(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], bool], within_s: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked after every state change."""

        async def watch() -> None:
            while not predicate():
                await self._changed.wait()

        await asyncio.wait_for(watch(), within_s)

    async def wait_order_done(self, odno: str, within_s: float = 5.0) -> SimOrder:
        """Wait until the order is no longer open (filled, cancelled or rejected)."""
        order = self.order(odno)
        await self.wait_for(lambda: order.status is not OrderStatus.OPEN, within_s)
        return order

    # -- servers ------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0, ws_port: int = 0) -> None:
        self._host = host
        runner = web.AppRunner(RestApi(self).app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]
        await self.ws.start(host, ws_port)

    async def stop(self) -> None:
        self.stopping.set()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        await self.ws.stop()
        if self._runner is not None:
            with contextlib.suppress(RuntimeError):
                await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> KisSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def ws_port(self) -> int:
        return self.ws.port

    def rest_url(self, env: Environment) -> str:
        if not self._port:
            raise RuntimeError("the simulator is not started")
        return f"http://{self._host}:{self._port}/{env.value}"

    def ws_url(self, env: Environment) -> str:
        """The WebSocket base; clients connect to `{ws_url}/tryitout` (the bare path works)."""
        if not self.ws.port:
            raise RuntimeError("the simulator is not started")
        return f"ws://{self._host}:{self.ws.port}/{env.value}"

    def env_vars(self) -> dict[str, str]:
        return {
            "MOAHOOK_KIS_REAL_URL": self.rest_url(Environment.REAL),
            "MOAHOOK_KIS_PAPER_URL": self.rest_url(Environment.PAPER),
            "MOAHOOK_KIS_REAL_WS_URL": self.ws_url(Environment.REAL),
            "MOAHOOK_KIS_PAPER_WS_URL": self.ws_url(Environment.PAPER),
        }


__all__ = ["KisRefusal", "KisSimulator", "SentNotice"]
