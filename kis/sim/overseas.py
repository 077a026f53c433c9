"""US stocks in the simulator: instruments, USD prices, the overseas order book, answers
and fill-notice records (KIS.md section 13). No I/O.

What KIS refuses is refused here too: a TR of the other environment, a paper order
whose ORD_DVSN is not `00`, a price-inquiry exchange code (`NAS`) in an order, an order
code (`NASD`) in a price inquiry, a symbol on the wrong exchange, a price off the tick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final
from zoneinfo import ZoneInfo

from kis.env import OVERSEAS_TR_IDS, Environment
from kis.sim.accounts import SimAccount
from kis.sim.clock import Clock, kst_hms
from kis.sim.codes import bad_input, refused, wrong_account
from kis.sim.orders import Side

NEW_YORK: Final = ZoneInfo("America/New_York")
ORDER_EXCHANGES: Final = frozenset({"NASD", "NYSE", "AMEX"})
PRICE_EXCHANGES: Final = {"NAS": "NASD", "NYS": "NYSE", "AMS": "AMEX"}
NOTICE_EXCHANGE: Final = {"NASD": "6", "NYSE": "7", "AMEX": "8"}
PRICE_DECIMALS: Final = 4
REAL_ORD_DVSN: Final = {
    Side.BUY: frozenset({"00", "32", "34"}),
    Side.SELL: frozenset({"00", "31", "32", "33", "34"}),
}
AT_MARKET: Final = frozenset({"31", "33"})  # MOO, MOC: no price

# TR ID -> side, per environment (KIS.md section 13: the paper sell is VTTT1001U).
ORDER_TR_IDS: Final = {
    env: {OVERSEAS_TR_IDS[env].buy: Side.BUY, OVERSEAS_TR_IDS[env].sell: Side.SELL}
    for env in Environment
}


@dataclass(frozen=True, slots=True)
class UsInstrument:
    symbol: str
    exchange: str  # order code
    name: str
    base_price: Decimal


DEFAULT_US_INSTRUMENTS: tuple[UsInstrument, ...] = (
    UsInstrument("AAPL", "NASD", "APPLE INC", Decimal("190.12")),
    UsInstrument("TSLA", "NASD", "TESLA INC", Decimal("250.00")),
    UsInstrument("KO", "NYSE", "COCA-COLA CO", Decimal("62.35")),
    UsInstrument("BRK.B", "NYSE", "BERKSHIRE HATHAWAY INC CL B", Decimal("470.50")),
    UsInstrument("SPY", "AMEX", "SPDR S&P 500 ETF TRUST", Decimal("560.25")),
    UsInstrument("SNDL", "NASD", "SNDL INC", Decimal("0.5123")),
)


def us_tick(price: Decimal) -> Decimal:
    return Decimal("0.01") if price >= 1 else Decimal("0.0001")


def implied(price: Decimal) -> str:
    """`CNTG_UNPR` with 4 implied decimals: 148.01 -> "001480100"."""
    return f"{int(price.scaleb(PRICE_DECIMALS)):09d}"


@dataclass(slots=True)
class UsOrder:
    odno: str
    orgno: str
    app_key: str = field(repr=False)
    env: Environment
    symbol: str
    exchange: str
    name: str
    side: Side
    ord_dvsn: str
    qty: int
    price: Decimal
    tr_id: str
    date: str  # New York date (KIS's overseas inquiries use local dates)
    time: str  # KST HHMMSS
    body: dict[str, str] = field(default_factory=dict)
    filled_qty: int = 0
    filled_amount: Decimal = Decimal(0)
    cancelled_qty: int = 0
    rejected: bool = False
    reserved: Decimal = Decimal(0)  # USD held for a buy

    @property
    def remaining(self) -> int:
        if self.rejected:
            return 0
        return self.qty - self.filled_qty - self.cancelled_qty

    @property
    def avg_price(self) -> Decimal:
        return self.filled_amount / self.filled_qty if self.filled_qty else Decimal(0)


@dataclass(frozen=True, slots=True)
class UsNotice:
    order: UsOrder
    cntg_yn: str  # "2" fill, "1" accepted / refused / cancelled
    rfus_yn: str
    acpt_yn: str
    qty: int
    price: Decimal
    time: str
    correction: str = "0"


NoticeSink = Callable[[SimAccount, UsNotice], None]


class UsBook:
    """US prices, orders and fills. Orders share the simulator's order-number sequence."""

    def __init__(
        self,
        instruments: tuple[UsInstrument, ...],
        clock: Clock,
        next_odno: Callable[[], str],
        on_notice: NoticeSink,
    ) -> None:
        self.instruments = {inst.symbol: inst for inst in instruments}
        self.prices = {inst.symbol: inst.base_price for inst in instruments}
        self.orders: list[UsOrder] = []
        self._by_odno: dict[str, UsOrder] = {}
        self._accounts: dict[str, SimAccount] = {}
        self._clock = clock
        self._next_odno = next_odno
        self._on_notice = on_notice

    def order(self, odno: str) -> UsOrder | None:
        return self._by_odno.get(odno.strip().zfill(10)) if odno.strip() else None

    def _emit(self, order: UsOrder, cntg: str, rfus: str, acpt: str, qty: int,
              price: Decimal, correction: str = "0") -> None:
        notice = UsNotice(order, cntg, rfus, acpt, qty, price, kst_hms(self._clock()),
                          correction)
        self._on_notice(self._accounts[order.odno], notice)

    # -- placing --------------------------------------------------------------------------
    def place(self, account: SimAccount, env: Environment, tr_id: str,
              body: Mapping[str, str]) -> UsOrder:
        side = ORDER_TR_IDS[env][tr_id]
        _check_account(body, account)
        exchange = _required(body, "OVRS_EXCG_CD")
        if exchange not in ORDER_EXCHANGES:
            raise bad_input("OVRS_EXCG_CD")  # NAS/NYS/AMS are price-inquiry codes
        symbol = _required(body, "PDNO")
        inst = self.instruments.get(symbol)
        if inst is None or inst.exchange != exchange:
            raise refused("APBK0656")
        qty_text = _required(body, "ORD_QTY")
        if not qty_text.isdigit() or int(qty_text) < 1:
            raise refused("APBK0510")
        ord_dvsn = _required(body, "ORD_DVSN")
        if env is Environment.PAPER and ord_dvsn != "00":
            raise refused("90000000")
        if ord_dvsn not in REAL_ORD_DVSN[side]:
            raise bad_input("ORD_DVSN")
        price = _price(_required(body, "OVRS_ORD_UNPR"), "OVRS_ORD_UNPR")
        if ord_dvsn in AT_MARKET:
            if price != 0:
                raise bad_input("OVRS_ORD_UNPR")
        elif price <= 0 or price % us_tick(price):
            raise refused("APBK0506")
        if body.get("SLL_TYPE", "") != ("00" if side is Side.SELL else ""):
            raise bad_input("SLL_TYPE")
        qty = int(qty_text)
        reserve = Decimal(0)
        if side is Side.BUY:
            unit = price if price > 0 else self.prices[symbol]
            reserve = unit * qty
            if reserve > account.usd_available:
                raise refused("APBK0952")
        elif qty > account.us_sellable(symbol):
            raise refused("APBK0400")
        now = self._clock()
        order = UsOrder(
            odno=self._next_odno(),
            orgno="91252" if env is Environment.REAL else "00950",
            app_key=account.app_key,
            env=env,
            symbol=symbol,
            exchange=exchange,
            name=inst.name,
            side=side,
            ord_dvsn=ord_dvsn,
            qty=qty,
            price=price,
            tr_id=tr_id,
            date=datetime.fromtimestamp(now, NEW_YORK).strftime("%Y%m%d"),
            time=kst_hms(now),
            body=dict(body),
            reserved=reserve,
        )
        if side is Side.BUY:
            account.usd_reserved += reserve
        else:
            account.us_reserved[symbol] = account.us_reserved.get(symbol, 0) + qty
        self.orders.append(order)
        self._by_odno[order.odno] = order
        self._accounts[order.odno] = account
        self._emit(order, "1", "0", "1", qty, price)
        return order

    # -- fills ----------------------------------------------------------------------------
    def _fill(self, order: UsOrder, qty: int, price: Decimal) -> None:
        account = self._accounts[order.odno]
        symbol = order.symbol
        amount = price * qty
        if order.side is Side.BUY:
            held = account.us_holdings.get(symbol, 0)
            avg = account.us_avg.get(symbol, price)
            account.us_avg[symbol] = (avg * held + amount) / (held + qty)
            account.us_holdings[symbol] = held + qty
            account.usd_cash -= amount
            released = order.reserved * qty / order.qty
            account.usd_reserved -= released
        else:
            account.us_holdings[symbol] = account.us_holdings.get(symbol, 0) - qty
            account.us_reserved[symbol] = account.us_reserved.get(symbol, 0) - qty
            account.usd_cash += amount
            if account.us_holdings[symbol] == 0:
                del account.us_holdings[symbol]
                account.us_avg.pop(symbol, None)
        order.filled_qty += qty
        order.filled_amount += amount
        self._emit(order, "2", "0", "2", qty, price)

    def crosses(self, order: UsOrder) -> bool:
        if order.ord_dvsn in AT_MARKET:
            return True
        current = self.prices[order.symbol]
        return current <= order.price if order.side is Side.BUY else current >= order.price

    def match(self, symbol: str) -> list[UsOrder]:
        """Fill open orders on `symbol` that the current price crosses, at that price."""
        current = self.prices[symbol]
        filled = []
        for order in self.orders:
            if order.symbol == symbol and order.remaining > 0 and self.crosses(order):
                self._fill(order, order.remaining, current)
                filled.append(order)
        return filled

    def reject(self, order: UsOrder) -> None:
        if order.remaining <= 0:
            return
        account = self._accounts[order.odno]
        left = order.remaining
        if order.side is Side.BUY:
            account.usd_reserved -= order.reserved * left / order.qty
        else:
            account.us_reserved[order.symbol] -= left
        order.rejected = True
        self._emit(order, "1", "1", "2", left, order.price)

    def cancel(self, account: SimAccount, body: Mapping[str, str]) -> UsOrder:
        _check_account(body, account)
        if _required(body, "RVSE_CNCL_DVSN_CD") != "02":
            raise refused("APBK1001")  # the simulator cancels; it does not revise
        original = self.order(_required(body, "ORGN_ODNO"))
        if (
            original is None
            or original.app_key != account.app_key
            or original.remaining <= 0
            or _required(body, "OVRS_EXCG_CD") != original.exchange
            or _required(body, "PDNO") != original.symbol
        ):
            raise refused("APBK0918")
        qty_text = _required(body, "ORD_QTY")
        qty = int(qty_text) if qty_text.isdigit() else 0
        if not 1 <= qty <= original.remaining:
            raise refused("APBK0918")
        if original.side is Side.BUY:
            account.usd_reserved -= original.reserved * qty / original.qty
        else:
            account.us_reserved[original.symbol] -= qty
        original.cancelled_qty += qty
        self._emit(original, "1", "0", "2", qty, original.price, correction="2")
        return original


def _required(body: Mapping[str, str], name: str) -> str:
    if name not in body:
        raise bad_input(name)
    return body[name]


def _check_account(body: Mapping[str, str], account: SimAccount) -> None:
    if body.get("CANO") != account.cano or body.get("ACNT_PRDT_CD") != account.product_code:
        raise wrong_account()


def _price(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise bad_input(name) from None
    if not value.is_finite() or value < 0 or value.as_tuple().exponent < -PRICE_DECIMALS:  # type: ignore[operator]
        raise bad_input(name)
    return value


# -- answers ----------------------------------------------------------------------------------


def price_output(book: UsBook, query: Mapping[str, str]) -> dict[str, str]:
    excd = query.get("EXCD", "")
    if excd not in PRICE_EXCHANGES:
        raise bad_input("EXCD")  # NASD/NYSE/AMEX are order codes
    symbol = query.get("SYMB", "")
    inst = book.instruments.get(symbol)
    if "AUTH" not in query or inst is None or inst.exchange != PRICE_EXCHANGES[excd]:
        # KIS answers an unknown symbol with an empty price, not a refusal.
        return {"rsym": f"D{excd}{symbol}", "zdiv": "", "base": "", "last": "", "ordy": ""}
    last = book.prices[symbol]
    return {
        "rsym": f"D{excd}{symbol}",
        "zdiv": str(PRICE_DECIMALS),
        "base": str(inst.base_price),
        "pvol": "0",
        "last": str(last),
        "sign": "2" if last > inst.base_price else "5" if last < inst.base_price else "3",
        "diff": str(abs(last - inst.base_price)),
        "rate": f"{((last - inst.base_price) / inst.base_price * 100):.2f}",
        "tvol": "0",
        "tamt": "0",
        "ordy": "매수가능",
    }


def balance_rows(book: UsBook, account: SimAccount, exchange: str) -> list[dict[str, str]]:
    rows = []
    for symbol, qty in account.us_holdings.items():
        inst = book.instruments.get(symbol)
        if qty <= 0 or inst is None or (exchange != "NASD" and inst.exchange != exchange):
            continue
        if exchange == "NASD" and account.env is Environment.PAPER and inst.exchange != "NASD":
            continue  # paper reads each exchange on its own
        price = book.prices[symbol]
        avg = account.us_avg.get(symbol, inst.base_price)
        bought = avg * qty
        value = price * qty
        rows.append({
            "cano": account.cano,
            "acnt_prdt_cd": account.product_code,
            "prdt_type_cd": "512",
            "ovrs_pdno": symbol,
            "ovrs_item_name": inst.name,
            "frcr_evlu_pfls_amt": f"{value - bought:.2f}",
            "evlu_pfls_rt": f"{((value - bought) / bought * 100) if bought else 0:.2f}",
            "pchs_avg_pric": f"{avg:.4f}",
            "ovrs_cblc_qty": str(qty),
            "ord_psbl_qty": str(account.us_sellable(symbol)),
            "frcr_pchs_amt1": f"{bought:.2f}",
            "ovrs_stck_evlu_amt": f"{value:.2f}",
            "now_pric2": f"{price:.4f}",
            "tr_crcy_cd": "USD",
            "ovrs_excg_cd": inst.exchange,
            "loan_type_cd": "",
            "loan_dt": "",
            "expd_dt": "",
        })
    return rows


def balance_summary(rows: list[dict[str, str]]) -> dict[str, str]:
    bought = sum((Decimal(r["frcr_pchs_amt1"]) for r in rows), Decimal(0))
    value = sum((Decimal(r["ovrs_stck_evlu_amt"]) for r in rows), Decimal(0))
    return {
        "frcr_pchs_amt1": f"{bought:.2f}",
        "ovrs_rlzt_pfls_amt": "0.00",
        "ovrs_tot_pfls": f"{value - bought:.2f}",
        "rlzt_erng_rt": "0.00",
        "tot_evlu_pfls_amt": f"{value - bought:.2f}",
        "tot_pftrt": "0.00",
        "frcr_buy_amt_smtl1": "0.00",
        "ovrs_rlzt_pfls_amt2": "0.00",
        "frcr_buy_amt_smtl2": "0.00",
    }


def ccnl_row(order: UsOrder) -> dict[str, str]:
    return {
        "ord_dt": order.date,
        "ord_gno_brno": order.orgno,
        "odno": order.odno,
        "orgn_odno": "",
        "sll_buy_dvsn_cd": order.side.value,
        "sll_buy_dvsn_cd_name": "매수" if order.side is Side.BUY else "매도",
        "rvse_cncl_dvsn": "00",
        "pdno": order.symbol,
        "prdt_name": order.name,
        "ft_ord_qty": str(order.qty),
        "ft_ord_unpr3": str(order.price),
        "ft_ccld_qty": str(order.filled_qty),
        "ft_ccld_unpr3": f"{order.avg_price:.4f}" if order.filled_qty else "0",
        "ft_ccld_amt3": f"{order.filled_amount:.4f}",
        "nccs_qty": str(order.remaining),
        "prcs_stat_name": "거부" if order.rejected else "완료" if order.remaining == 0 else "",
        "rjct_rson": "시뮬레이터 거부" if order.rejected else "",
        "ord_tmd": order.time,
        "tr_mket_name": {"NASD": "나스닥", "NYSE": "뉴욕", "AMEX": "아멕스"}[order.exchange],
        "tr_natn": "840",
        "tr_natn_name": "미국",
        "ovrs_excg_cd": order.exchange,
        "tr_crcy_cd": "USD",
        "dmst_ord_dt": order.date,
        "thco_ord_tmd": order.time,
        "loan_type_cd": "10",
        "mdia_dvsn_name": "OpenAPI",
    }


def select_orders(
    book: UsBook, account: SimAccount, env: Environment, query: Mapping[str, str]
) -> list[UsOrder]:
    start, end = query.get("ORD_STRT_DT", ""), query.get("ORD_END_DT", "")
    for name, value in (("ORD_STRT_DT", start), ("ORD_END_DT", end)):
        if len(value) != 8 or not value.isdigit():
            raise bad_input(name)
    if query.get("ODNO", ""):
        raise bad_input("ODNO")  # no order-number filter exists
    symbol = query.get("PDNO", "")
    exchange = query.get("OVRS_EXCG_CD", "")
    if env is Environment.PAPER and (
        symbol or exchange or query.get("SLL_BUY_DVSN") != "00"
        or query.get("CCLD_NCCS_DVSN") != "00"
    ):
        raise bad_input("PDNO" if symbol else "OVRS_EXCG_CD" if exchange else "SLL_BUY_DVSN")
    chosen = []
    for order in book.orders:
        if order.app_key != account.app_key or not start <= order.date <= end:
            continue
        if symbol and symbol != "%" and order.symbol != symbol:
            continue
        if exchange and exchange not in ("%", "NASD") and order.exchange != exchange:
            continue
        chosen.append(order)
    return chosen


def psamount_output(book: UsBook, account: SimAccount, query: Mapping[str, str]) -> dict[str, str]:
    exchange = query.get("OVRS_EXCG_CD", "")
    if exchange not in ORDER_EXCHANGES:
        raise bad_input("OVRS_EXCG_CD")
    symbol = query.get("ITEM_CD", "")
    if symbol not in book.instruments:
        raise refused("APBK0656")
    price = _price(query.get("OVRS_ORD_UNPR", ""), "OVRS_ORD_UNPR")
    if price <= 0:
        price = book.prices[symbol]
    cash = max(Decimal(0), account.usd_available)
    qty = int(cash // price)
    return {
        "tr_crcy_cd": "USD",
        "ord_psbl_frcr_amt": f"{cash:.2f}",
        "sll_ruse_psbl_amt": "0.00",
        "ovrs_ord_psbl_amt": f"{cash:.2f}",
        "max_ord_psbl_qty": str(qty),
        "echm_af_ord_psbl_amt": "0.00",
        "echm_af_ord_psbl_qty": "0",
        "ord_psbl_qty": str(qty),
        "exrt": "1380.00",
        "frcr_ord_psbl_amt1": f"{cash:.2f}",
        "ovrs_max_ord_psbl_qty": str(qty),
    }


def notice_fields(account: SimAccount, notice: UsNotice) -> list[str]:
    """The 25 `^`-separated values of one H0GSCNI0/H0GSCNI9 record, in order."""
    order = notice.order
    fill = notice.cntg_yn == "2"
    return [
        account.hts_id,
        account.cano + account.product_code,
        order.odno,
        "",
        order.side.value,
        notice.correction,
        order.ord_dvsn,
        order.symbol,
        str(notice.qty),
        implied(notice.price),
        notice.time,
        notice.rfus_yn,
        notice.cntg_yn,
        notice.acpt_yn,
        order.orgno,
        str(order.qty) if fill else "",  # an acceptance leaves ODER_QTY empty
        account.name,
        order.name,
        NOTICE_EXCHANGE[order.exchange],
        "",
        "",
        "",
        "",
        "",
        "",
    ]
