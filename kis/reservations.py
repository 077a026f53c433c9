"""Domestic reservation orders (예약주문) and the realised-P&L inquiry: request fields and
answers (KIS.md sections 14 and 15). Pure. Both exist in REAL only.

Reservations: entered 15:40 → 07:30 of the next business day (none 23:40–00:10), sent
by KIS at the next open; KIS sends no notice when it processes one, so its result is
read back from the reservation list (`order-resv-ccnl`).
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Final

from kis._wire import JsonObject, decimal, integer, objects, text
from kis.env import KST
from kis.models import Account, RealisedPnl, Reservation, ReservationRequest, Side

ORDER_PATH: Final = "/uapi/domestic-stock/v1/trading/order-resv"
LIST_PATH: Final = "/uapi/domestic-stock/v1/trading/order-resv-ccnl"
CANCEL_PATH: Final = "/uapi/domestic-stock/v1/trading/order-resv-rvsecncl"
RLZ_PL_PATH: Final = "/uapi/domestic-stock/v1/trading/inquire-balance-rlz-pl"

ORDER_TR: Final = "CTSC0008U"
LIST_TR: Final = "CTSC0004R"
CANCEL_TR: Final = "CTSC0009U"
RLZ_PL_TR: Final = "TTTC8494R"

# The entry window (KST): from 15:40 on a trading day to 07:30 of the next one, except
# while KIS resets its servers 23:40–00:10.
ENTRY_OPENS: Final = time(15, 40)
ENTRY_CLOSES: Final = time(7, 30)
RESET_STARTS: Final = time(23, 40)
RESET_ENDS: Final = time(0, 10)


def in_entry_window(now: datetime, trading_day: bool) -> bool:
    """Whether KIS takes a reservation at `now`; `trading_day`: KRX trades on now's KST
    date. Outside 07:30–15:40 of a trading day, and all of a closed day, except the
    nightly reset."""
    clock = now.astimezone(KST).time()
    if clock >= RESET_STARTS or clock < RESET_ENDS:
        return False
    return not trading_day or clock < ENTRY_CLOSES or clock >= ENTRY_OPENS


def order_body(account: Account, order: ReservationRequest) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": order.symbol,
        "ORD_QTY": str(order.quantity),
        "ORD_UNPR": str(order.price if order.ord_dvsn_cd == "00" else 0),
        "SLL_BUY_DVSN_CD": order.side.kis_code,
        "ORD_DVSN_CD": order.ord_dvsn_cd,  # not ORD_DVSN: this TR names it so
        "ORD_OBJT_CBLC_DVSN_CD": "10",  # cash
        "LOAN_DT": "",
        "RSVN_ORD_END_DT": "",  # one day, not a period reservation
        "LDNG_DT": "",
    }


def sequence(body: JsonObject) -> str:
    output = objects(body.get("output"))
    seq = text(output[0], "RSVN_ORD_SEQ") if output else ""
    if not seq:
        raise ValueError("reservation answer without RSVN_ORD_SEQ")
    return seq


def list_params(account: Account, start: date, end: date) -> dict[str, str]:
    return {
        "RSVN_ORD_ORD_DT": start.strftime("%Y%m%d"),
        "RSVN_ORD_END_DT": end.strftime("%Y%m%d"),
        "RSVN_ORD_SEQ": "",
        "TMNL_MDIA_KIND_CD": "00",
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PRCS_DVSN_CD": "0",
        "CNCL_YN": "Y",  # cancelled ones too: a cancel is a result worth seeing
        "PDNO": "",
        "SLL_BUY_DVSN_CD": "",
    }


def reservations(pages: list[JsonObject]) -> list[Reservation]:
    found: list[Reservation] = []
    for page in pages:
        for row in objects(page.get("output")):
            seq = text(row, "rsvn_ord_seq")
            if not seq:
                continue
            found.append(
                Reservation(
                    seq=seq,
                    order_date=text(row, "rsvn_ord_ord_dt"),
                    symbol=text(row, "pdno"),
                    name=text(row, "kor_item_shtn_name"),
                    side=Side.from_kis_code(text(row, "sll_buy_dvsn_cd")),
                    quantity=integer(row, "ord_rsvn_qty"),
                    price=decimal(row, "ord_rsvn_unpr"),
                    filled_qty=integer(row, "tot_ccld_qty"),
                    filled_amount=decimal(row, "tot_ccld_amt"),
                    order_no=text(row, "odno"),
                    result=text(row, "prcs_rslt"),
                    refusal=text(row, "rjct_rson2"),
                    cancelled=text(row, "cncl_yn").upper() == "Y" or bool(
                        text(row, "cncl_ord_dt")
                    ),
                )
            )
    return found


def cancel_body(account: Account, seq: str, order_date: str) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "RSVN_ORD_SEQ": seq,
        # KIS documents the organisation number as required but returns it nowhere;
        # its own samples send arbitrary values.
        "RSVN_ORD_ORGNO": "",
        "RSVN_ORD_ORD_DT": order_date,
    }


def rlz_pl_params(account: Account) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "AFHR_FLPR_YN": "N",
        "OFL_YN": "",
        "INQR_DVSN": "00",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "01",  # today's trades only
        "COST_ICLD_YN": "N",
    }


def realised_pnl(pages: list[JsonObject]) -> RealisedPnl:
    summary: JsonObject = {}
    for page in pages:
        rows = objects(page.get("output2"))
        if rows:
            summary = rows[0]
    if not summary:
        raise ValueError("realised P&L answer without output2")
    rate_text = text(summary, "rlzt_erng_rt")
    return RealisedPnl(
        total=decimal(summary, "rlzt_pfls"),
        rate=decimal(summary, "rlzt_erng_rt") if rate_text else None,
    )
