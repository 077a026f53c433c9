"""Reservation orders (예약주문) in the simulator: entered outside hours, sent at the open
(`process`), listed with their result, cancellable until then (KIS.md section 14).
REAL only, as at KIS. No I/O.

What KIS refuses is refused here: `ORD_DVSN` instead of `ORD_DVSN_CD`, a missing field,
a limit price off the tick, an entry outside the window (when `window_open` is False).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from kis.sim.accounts import SimAccount
from kis.sim.clock import Clock, kst, kst_date
from kis.sim.codes import KisRefusal, bad_input, refused
from kis.sim.market import Market
from kis.sim.orders import MARKET_LIKE, Broker, PlaceRequest, Side, SimOrder
from kis.sim.validation import check_account, check_limit_price

ORD_DVSN_CDS = frozenset({"00", "01", "02", "05"})
RESULT_DONE = "처리완료"
RESULT_REFUSED = "거부"
RESULT_CANCELLED = "취소"


@dataclass(slots=True)
class SimReservation:
    seq: str
    app_key: str = field(repr=False)
    cano: str
    product_code: str
    symbol: str
    name: str
    side: Side
    ord_dvsn_cd: str
    qty: int
    price: int
    received_date: str  # KST date it was entered
    order_date: str  # the day it is sent
    body: dict[str, str] = field(default_factory=dict)
    order: SimOrder | None = None
    result: str = ""
    refusal: str = ""
    cancelled_date: str = ""

    @property
    def waiting(self) -> bool:
        return self.order is None and not self.result and not self.cancelled_date


class ReservationBook:
    def __init__(self, market: Market, clock: Clock) -> None:
        self._market = market
        self._clock = clock
        self.items: list[SimReservation] = []
        self._next_seq = 1
        self.window_open = True  # tests close it to see KIS's refusal

    def place(self, account: SimAccount, body: Mapping[str, str]) -> SimReservation:
        check_account(body, account)
        if "ORD_DVSN_CD" not in body:
            raise bad_input("ORD_DVSN_CD")  # e.g. order-cash's ORD_DVSN sent by mistake
        for name in ("PDNO", "ORD_QTY", "ORD_UNPR", "SLL_BUY_DVSN_CD", "ORD_OBJT_CBLC_DVSN_CD"):
            if name not in body:
                raise bad_input(name)
        ord_dvsn = body["ORD_DVSN_CD"]
        if ord_dvsn not in ORD_DVSN_CDS:
            raise bad_input("ORD_DVSN_CD")
        if body["ORD_OBJT_CBLC_DVSN_CD"] != "10":
            raise bad_input("ORD_OBJT_CBLC_DVSN_CD")
        code = body["SLL_BUY_DVSN_CD"]
        if code not in ("01", "02"):
            raise bad_input("SLL_BUY_DVSN_CD")
        qty_text, price_text = body["ORD_QTY"].strip(), body["ORD_UNPR"].strip()
        if not qty_text.isdigit() or int(qty_text) < 1:
            raise refused("APBK0510")
        if not price_text.isdigit():
            raise bad_input("ORD_UNPR")
        quote = self._market.get(body["PDNO"])
        if quote is None:
            raise refused("APBK0656")
        price = int(price_text)
        if ord_dvsn in ("01", "05"):
            if price != 0:
                raise refused("APBK0507")
        else:
            check_limit_price(self._market, quote.instrument.symbol, price)
        if not self.window_open:
            raise KisRefusal("APBK1680", "예약주문 가능시간이 아닙니다.")
        now = self._clock()
        reservation = SimReservation(
            seq=str(self._next_seq),
            app_key=account.app_key,
            cano=account.cano,
            product_code=account.product_code,
            symbol=quote.instrument.symbol,
            name=quote.instrument.name,
            side=Side(code),
            ord_dvsn_cd=ord_dvsn,
            qty=int(qty_text),
            price=price,
            received_date=kst_date(now),
            order_date=_next_session(now),
            body=dict(body),
        )
        self._next_seq += 1
        self.items.append(reservation)
        return reservation

    def listing(self, account: SimAccount, query: Mapping[str, str]) -> list[dict[str, str]]:
        for name in ("RSVN_ORD_ORD_DT", "RSVN_ORD_END_DT", "TMNL_MDIA_KIND_CD", "CANO",
                     "ACNT_PRDT_CD", "PRCS_DVSN_CD", "CNCL_YN", "CTX_AREA_FK200",
                     "CTX_AREA_NK200"):
            if name not in query:
                raise bad_input(name)
        check_account(query, account)
        start, end = query["RSVN_ORD_ORD_DT"], query["RSVN_ORD_END_DT"]
        if not (len(start) == len(end) == 8 and start.isdigit() and end.isdigit()):
            raise bad_input("RSVN_ORD_ORD_DT")
        with_cancelled = query["CNCL_YN"] == "Y"
        return [
            _row(item)
            for item in self.items
            if item.app_key == account.app_key
            and start <= item.order_date <= end
            and (with_cancelled or not item.cancelled_date)
        ]

    def cancel(self, account: SimAccount, body: Mapping[str, str]) -> SimReservation:
        check_account(body, account)
        for name in ("RSVN_ORD_SEQ", "RSVN_ORD_ORD_DT"):
            if name not in body:
                raise bad_input(name)
        item = next(
            (r for r in self.items
             if r.seq == body["RSVN_ORD_SEQ"].strip() and r.app_key == account.app_key),
            None,
        )
        if item is None or not item.waiting:
            raise refused("APBK0918")
        item.cancelled_date = kst_date(self._clock())
        item.result = RESULT_CANCELLED
        return item

    def process(
        self,
        accounts: Callable[[str], SimAccount | None],
        broker: Broker,
        after_order: Callable[[SimOrder], None],
    ) -> list[SimReservation]:
        """The open: every waiting reservation becomes an order (or is refused, as KIS
        refuses an order it cannot fund). Returns what was processed."""
        done: list[SimReservation] = []
        for item in self.items:
            account = accounts(item.app_key)
            if not item.waiting or account is None:
                continue
            ord_dvsn = "01" if item.ord_dvsn_cd in ("01", "05") else "00"
            request = PlaceRequest(
                item.side, item.symbol, ord_dvsn, item.qty,
                0 if ord_dvsn in MARKET_LIKE else item.price, "KRX", "CTSC0008U",
                dict(item.body),
            )
            try:
                item.order = broker.place(account, request)
            except KisRefusal as refusal:
                item.result = RESULT_REFUSED
                item.refusal = refusal.msg1
            else:
                item.result = RESULT_DONE
                after_order(item.order)
            done.append(item)
        return done


def _next_session(now: float) -> str:
    """The day a reservation entered `now` is sent: today before the open, else the next
    weekday (the simulator keeps no holiday calendar)."""
    local = kst(now)
    day = local.date()
    if local.weekday() >= 5 or local.hour >= 9:
        day += timedelta(days=1)
        while day.weekday() >= 5:
            day += timedelta(days=1)
    return day.strftime("%Y%m%d")


def _row(item: SimReservation) -> dict[str, str]:
    order = item.order
    return {
        "rsvn_ord_seq": item.seq,
        "rsvn_ord_ord_dt": item.order_date,
        "rsvn_ord_rcit_dt": item.received_date,
        "pdno": item.symbol,
        "ord_dvsn_cd": item.ord_dvsn_cd,
        "ord_rsvn_qty": str(item.qty),
        "tot_ccld_qty": str(order.filled_qty if order else 0),
        "cncl_ord_dt": item.cancelled_date,
        "ord_tmd": order.time if order else "",
        "ctac_tlno": "",
        "rjct_rson2": item.refusal,
        "odno": order.odno if order else "",
        "rsvn_ord_rcit_tmd": "",
        "kor_item_shtn_name": item.name,
        "sll_buy_dvsn_cd": item.side.value,
        "ord_rsvn_unpr": str(item.price),
        "tot_ccld_amt": str(order.filled_amount if order else 0),
        "loan_dt": "",
        "cncl_rcit_tmd": "",
        "prcs_rslt": item.result,
        "ord_dvsn_name": "시장가" if item.ord_dvsn_cd == "01" else "지정가",
        "tmnl_mdia_kind_cd": "00",
        "rsvn_end_dt": "",
        "cncl_yn": "Y" if item.cancelled_date else "N",
    }
