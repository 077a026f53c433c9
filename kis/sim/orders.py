"""Orders, reservations and fills: the simulated broker's books. No I/O.

Every change of state is reported through `on_notice(account, notice)` so the
WebSocket side can send fill notices; the simulator wires that callback.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from kis.env import Environment
from kis.sim.accounts import SimAccount
from kis.sim.clock import Clock, kst_date, kst_hms
from kis.sim.codes import refused
from kis.sim.market import Market


class Side(enum.StrEnum):
    SELL = "01"
    BUY = "02"


class OrderStatus(enum.StrEnum):
    OPEN = "open"  # accepted, something left to fill
    FILLED = "filled"
    CANCELLED = "cancelled"  # remainder cancelled (or replaced by a revision)
    REJECTED = "rejected"  # accepted, then refused by the exchange
    DONE = "done"  # a revise/cancel request order, processed


class OrderKind(enum.StrEnum):
    NEW = "0"
    REVISE = "1"
    CANCEL = "2"


MARKET_LIKE = frozenset({"01", "03", "04"})


@dataclass(slots=True)
class SimFill:
    qty: int
    price: int
    time: str


@dataclass(slots=True)
class SimOrder:
    """One order as KIS would keep it. `body` is the request body exactly as received."""

    odno: str
    orgno: str
    app_key: str = field(repr=False)
    env: Environment
    cano: str
    product_code: str
    symbol: str
    name: str
    side: Side
    ord_dvsn: str
    qty: int
    price: int
    tr_id: str
    exchange: str
    date: str
    time: str
    body: dict[str, str] = field(default_factory=dict)
    kind: OrderKind = OrderKind.NEW
    original_odno: str = ""
    status: OrderStatus = OrderStatus.OPEN
    filled_qty: int = 0
    filled_amount: int = 0
    cancelled_qty: int = 0
    rejected_qty: int = 0
    reserved_unit: int = 0  # cash reserved per share (buys)
    fills: list[SimFill] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        if self.kind is OrderKind.CANCEL:
            return 0
        return self.qty - self.filled_qty - self.cancelled_qty - self.rejected_qty

    @property
    def is_market(self) -> bool:
        return self.ord_dvsn in MARKET_LIKE

    @property
    def avg_price(self) -> float:
        return self.filled_amount / self.filled_qty if self.filled_qty else 0.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One fill-notice record to send (KIS.md section 11 semantics)."""

    order: SimOrder
    cntg_yn: str  # "2" fill, "1" accepted/revised/cancelled/refused
    rfus_yn: str
    acpt_yn: str
    qty: int
    price: int
    time: str


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    side: Side
    symbol: str
    ord_dvsn: str
    qty: int
    price: int
    exchange: str
    tr_id: str
    body: dict[str, str]


class Broker:
    def __init__(
        self,
        market: Market,
        clock: Clock,
        on_notice: Callable[[SimAccount, Notice], None],
        *,
        split_fill_qty: int = 10,
        fill_lots: int = 0,
        first_odno: int = 1,
    ) -> None:
        self.market = market
        self._clock = clock
        self._on_notice = on_notice
        self.split_fill_qty = split_fill_qty
        # > 1: a market order fills in that many equal lots stamped with one second (as
        # KRX often fills a market order); KIS sends no fill id, so the notices look alike.
        self.fill_lots = fill_lots
        self._next_odno = first_odno
        self.orders: list[SimOrder] = []
        self._by_odno: dict[str, SimOrder] = {}
        self._accounts: dict[str, SimAccount] = {}

    # -- bookkeeping ---------------------------------------------------------------
    def new_odno(self) -> str:
        """The next order number; domestic and overseas orders share one sequence."""
        return self._new_odno()

    def _new_odno(self) -> str:
        odno = f"{self._next_odno:010d}"
        self._next_odno += 1
        return odno

    @staticmethod
    def orgno(env: Environment) -> str:
        return "91252" if env is Environment.REAL else "00950"

    def order(self, odno: str) -> SimOrder | None:
        return self._by_odno.get(odno.strip().zfill(10)) if odno.strip() else None

    def _record(self, account: SimAccount, order: SimOrder) -> None:
        self.orders.append(order)
        self._by_odno[order.odno] = order
        self._accounts[order.odno] = account

    def _emit(
        self, order: SimOrder, cntg: str, rfus: str, acpt: str, qty: int, price: int,
        at: float | None = None,
    ) -> None:
        account = self._accounts[order.odno]
        stamp = kst_hms(self._clock() if at is None else at)
        notice = Notice(order, cntg, rfus, acpt, qty, price, stamp)
        self._on_notice(account, notice)

    # -- placing ---------------------------------------------------------------------
    def place(self, account: SimAccount, req: PlaceRequest) -> SimOrder:
        """Check funds, reserve, record and announce an order; raises `KisRefusal`."""
        quote = self.market.get(req.symbol)
        if quote is None:
            raise refused("APBK0656")
        if quote.suspended:
            raise refused("APBK0655")
        reserved_unit = 0
        if req.side is Side.BUY:
            reserved_unit = quote.upper if req.ord_dvsn in MARKET_LIKE else req.price
            if reserved_unit * req.qty > account.available_cash:
                raise refused("APBK0952")
        elif req.qty > account.sellable(req.symbol):
            raise refused("APBK0400")
        now = self._clock()
        order = SimOrder(
            odno=self._new_odno(),
            orgno=self.orgno(account.env),
            app_key=account.app_key,
            env=account.env,
            cano=account.cano,
            product_code=account.product_code,
            symbol=req.symbol,
            name=quote.instrument.name,
            side=req.side,
            ord_dvsn=req.ord_dvsn,
            qty=req.qty,
            price=req.price,
            tr_id=req.tr_id,
            exchange=req.exchange,
            date=kst_date(now),
            time=kst_hms(now),
            body=dict(req.body),
            reserved_unit=reserved_unit,
        )
        if req.side is Side.BUY:
            account.reserved_cash += reserved_unit * req.qty
        else:
            account.reserved_qty[req.symbol] = account.reserved_qty.get(req.symbol, 0) + req.qty
        self._record(account, order)
        self._emit(order, "1", "0", "1", order.qty, order.price)
        return order

    # -- fills -----------------------------------------------------------------------
    def _fill(self, order: SimOrder, qty: int, price: int, at: float | None = None) -> None:
        account = self._accounts[order.odno]
        symbol = order.symbol
        if order.side is Side.BUY:
            held = account.holdings.get(symbol, 0)
            avg = account.avg_prices.get(symbol, float(price))
            account.avg_prices[symbol] = (avg * held + price * qty) / (held + qty)
            account.holdings[symbol] = held + qty
            account.cash -= price * qty
            account.reserved_cash -= order.reserved_unit * qty
        else:
            cost = round(account.avg_prices.get(symbol, float(price)) * qty)
            day = kst_date(self._clock())
            account.realised[day] = account.realised.get(day, 0) + price * qty - cost
            account.realised_cost[day] = account.realised_cost.get(day, 0) + cost
            account.holdings[symbol] = account.holdings.get(symbol, 0) - qty
            account.reserved_qty[symbol] = account.reserved_qty.get(symbol, 0) - qty
            account.cash += price * qty
            if account.holdings[symbol] == 0:
                del account.holdings[symbol]
                account.avg_prices.pop(symbol, None)
        order.filled_qty += qty
        order.filled_amount += price * qty
        stamp = self._clock() if at is None else at
        order.fills.append(SimFill(qty, price, kst_hms(stamp)))
        quote = self.market.quote(symbol)
        quote.volume += qty
        if order.remaining == 0:
            order.status = OrderStatus.FILLED
        self._emit(order, "2", "0", "2", qty, price, stamp)

    def execute_market(self, order: SimOrder) -> None:
        """Fill what is left at the current price: in `fill_lots` equal lots within one
        second when set, else in two parts from `split_fill_qty` up."""
        if order.status is not OrderStatus.OPEN or order.remaining <= 0:
            return
        price = self.market.quote(order.symbol).price
        left = order.remaining
        if self.fill_lots > 1 and left >= self.fill_lots:
            at = self._clock()
            lot = left // self.fill_lots
            for _ in range(self.fill_lots - 1):
                self._fill(order, lot, price, at)
            self._fill(order, left - lot * (self.fill_lots - 1), price, at)
            return
        if left >= self.split_fill_qty > 0:
            first = left // 2
            self._fill(order, first, price)
            left -= first
        self._fill(order, left, price)

    def crosses(self, order: SimOrder) -> bool:
        price = self.market.quote(order.symbol).price
        if order.side is Side.BUY:
            return price <= order.price
        return price >= order.price

    def match(self, symbol: str, *, incoming: SimOrder | None = None) -> list[SimOrder]:
        """Fill resting limit orders on `symbol` that the current price crosses.

        Resting orders fill at their own price; a marketable order just placed
        (`incoming`) fills at the current price.
        """
        current = self.market.quote(symbol).price
        filled = []
        candidates = [incoming] if incoming is not None else self.orders
        for order in candidates:
            if (
                order.symbol != symbol
                or order.status is not OrderStatus.OPEN
                or order.kind is OrderKind.CANCEL
                or order.is_market
                or order.remaining <= 0
                or not self.crosses(order)
            ):
                continue
            self._fill(order, order.remaining, current if incoming is not None else order.price)
            filled.append(order)
        return filled

    # -- refusals, revisions, cancels -------------------------------------------------
    def _release(self, order: SimOrder, qty: int) -> None:
        account = self._accounts[order.odno]
        if order.side is Side.BUY:
            account.reserved_cash -= order.reserved_unit * qty
        else:
            account.reserved_qty[order.symbol] = account.reserved_qty.get(order.symbol, 0) - qty

    def reject(self, order: SimOrder) -> None:
        """The exchange refuses an accepted order (a fault): release it and announce."""
        left = order.remaining
        if order.status is not OrderStatus.OPEN or left <= 0:
            return
        self._release(order, left)
        order.rejected_qty += left
        order.status = OrderStatus.REJECTED
        self._emit(order, "1", "1", "2", left, order.price)

    def revise_or_cancel(
        self,
        account: SimAccount,
        original_odno: str,
        *,
        cancel: bool,
        qty_all: bool,
        qty: int,
        price: int,
        ord_dvsn: str,
        tr_id: str,
        body: dict[str, str],
    ) -> SimOrder:
        """Cancel or revise (part of) what is left of an order; returns the new order.

        As at KIS, the revise/cancel gets its own order number; a revision then rests
        (or fills) under that number with `original_odno` pointing back.
        """
        original = self.order(original_odno)
        if (
            original is None
            or original.app_key != account.app_key
            or original.status is not OrderStatus.OPEN
            or original.remaining <= 0
        ):
            raise refused("APBK0918")
        left = original.remaining
        amount = left if qty_all or qty <= 0 else qty
        if amount > left:
            raise refused("APBK0918")
        unit = 0
        if not cancel and original.side is Side.BUY:
            quote = self.market.quote(original.symbol)
            unit = quote.upper if ord_dvsn in MARKET_LIKE else price
            freed = original.reserved_unit * amount
            if unit * amount > account.available_cash + freed:
                raise refused("APBK0952")
        now = self._clock()
        new = SimOrder(
            odno=self._new_odno(),
            orgno=original.orgno,
            app_key=account.app_key,
            env=account.env,
            cano=account.cano,
            product_code=account.product_code,
            symbol=original.symbol,
            name=original.name,
            side=original.side,
            ord_dvsn=original.ord_dvsn if cancel else ord_dvsn,
            qty=amount,
            price=original.price if cancel else price,
            tr_id=tr_id,
            exchange=original.exchange,
            date=kst_date(now),
            time=kst_hms(now),
            body=dict(body),
            kind=OrderKind.CANCEL if cancel else OrderKind.REVISE,
            original_odno=original.odno,
            status=OrderStatus.DONE if cancel else OrderStatus.OPEN,
            reserved_unit=unit,
        )
        self._release(original, amount)
        original.cancelled_qty += amount
        if original.remaining == 0:
            original.status = OrderStatus.CANCELLED
        if not cancel:
            if new.side is Side.BUY:
                account.reserved_cash += unit * amount
            else:
                account.reserved_qty[new.symbol] = account.reserved_qty.get(new.symbol, 0) + amount
        self._record(account, new)
        self._emit(new, "1", "0", "2", amount, new.price)
        return new
