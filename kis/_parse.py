"""KIS answers -> models, and models -> KIS request fields. Pure."""

from __future__ import annotations

from datetime import date

from kis._wire import JsonObject, as_object, decimal, integer, objects, text
from kis.errors import KisServerError
from kis.models import (
    Account,
    Balance,
    Buyable,
    Execution,
    Holding,
    OrderAck,
    OrderRequest,
    OrderType,
    Quote,
    Side,
)

EXCHANGE = "KRX"


def order_body(account: Account, order: OrderRequest) -> dict[str, str]:
    """`order-cash` body, KIS.md section 6: uppercase keys, every value a string."""
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": order.symbol,
        "ORD_DVSN": order.order_type.ord_dvsn,
        "ORD_QTY": str(order.quantity),
        "ORD_UNPR": str(order.price if order.order_type is OrderType.LIMIT else 0),
        "EXCG_ID_DVSN_CD": EXCHANGE,
        "SLL_TYPE": "01" if order.side is Side.SELL else "",
        "CNDT_PRIC": "",
    }


def revise_cancel_body(
    account: Account,
    *,
    branch: str,
    order_no: str,
    cancel: bool,
    quantity: int,
    price: int,
    order_type: OrderType,
) -> dict[str, str]:
    """`order-rvsecncl` body, KIS.md section 7; quantity 0 = all remaining."""
    if quantity < 0 or price < 0:
        raise ValueError("quantity and price must not be negative")
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "KRX_FWDG_ORD_ORGNO": branch,
        "ORGN_ODNO": order_no,
        "ORD_DVSN": order_type.ord_dvsn,
        "RVSE_CNCL_DVSN_CD": "02" if cancel else "01",
        "ORD_QTY": str(quantity),
        "ORD_UNPR": str(price),
        "QTY_ALL_ORD_YN": "Y" if quantity == 0 else "N",
        "EXCG_ID_DVSN_CD": EXCHANGE,
    }


def balance_params(account: Account) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "AFHR_FLPR_YN": "N",
        "OFL_YN": "",
        "INQR_DVSN": "02",
        "UNPR_DVSN": "01",
        "FUND_STTL_ICLD_YN": "N",
        "FNCG_AMT_AUTO_RDPT_YN": "N",
        "PRCS_DVSN": "00",
    }


def buyable_params(account: Account, symbol: str, price: int) -> dict[str, str]:
    # price 0 asks for a market order (KIS sizes it at the upper limit); else a limit.
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": symbol,
        "ORD_UNPR": str(price) if price > 0 else "",
        "ORD_DVSN": OrderType.LIMIT.ord_dvsn if price > 0 else OrderType.MARKET.ord_dvsn,
        "CMA_EVLU_AMT_ICLD_YN": "N",
        "OVRS_ICLD_YN": "N",
    }


def executions_params(
    account: Account, *, start: date, end: date, order_no: str, symbol: str
) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "INQR_STRT_DT": start.strftime("%Y%m%d"),
        "INQR_END_DT": end.strftime("%Y%m%d"),
        "SLL_BUY_DVSN_CD": "00",
        "INQR_DVSN": "00",
        "PDNO": symbol,
        "CCLD_DVSN": "00",
        "ORD_GNO_BRNO": "",
        "ODNO": order_no,
        "INQR_DVSN_3": "00",
        "INQR_DVSN_1": "",
    }


def _output(body: JsonObject, key: str = "output") -> JsonObject:
    found = objects(body.get(key))
    return found[0] if found else {}


def order_ack(body: JsonObject) -> OrderAck:
    output = _output(body)
    order_no = text(output, "ODNO")
    if not order_no:
        raise ValueError("order answer without ODNO")
    return OrderAck(
        order_no=order_no,
        branch=text(output, "KRX_FWDG_ORD_ORGNO"),
        time=text(output, "ORD_TMD"),
        msg_cd=text(body, "msg_cd"),
        msg1=text(body, "msg1"),
    )


def quote(symbol: str, body: JsonObject, tr_id: str) -> Quote:
    output = as_object(body.get("output"))
    if not output:
        raise KisServerError(rt_cd=text(body, "rt_cd"), msg_cd=text(body, "msg_cd"),
                             msg1="price answer without output", tr_id=tr_id, http_status=200)
    return Quote(
        symbol=symbol,
        price=integer(output, "stck_prpr"),
        upper_limit=integer(output, "stck_mxpr"),
        lower_limit=integer(output, "stck_llam"),
        base_price=integer(output, "stck_sdpr"),
        tick=integer(output, "aspr_unit"),
        name=text(output, "rprs_mrkt_kor_name"),
        suspended=text(output, "temp_stop_yn").upper() == "Y",
    )


def holdings(body: JsonObject) -> list[Holding]:
    found: list[Holding] = []
    for row in objects(body.get("output1")):
        symbol = text(row, "pdno")
        if not symbol:
            continue
        quantity = integer(row, "hldg_qty")
        sellable = integer(row, "ord_psbl_qty")
        if quantity == 0 and sellable == 0:
            continue  # sold out today: KIS still lists the row
        found.append(
            Holding(
                symbol=symbol,
                name=text(row, "prdt_name"),
                quantity=quantity,
                sellable=sellable,
                avg_price=decimal(row, "pchs_avg_pric"),
                price=integer(row, "prpr"),
            )
        )
    return found


def balance(pages: list[JsonObject]) -> Balance:
    rows = [holding for page in pages for holding in holdings(page)]
    summary: JsonObject = {}
    for page in pages:
        summary = _output(page, "output2") or summary
    return Balance(
        holdings=rows,
        cash=integer(summary, "dnca_tot_amt"),
        total_eval=integer(summary, "tot_evlu_amt"),
        settled_cash=integer(summary, "prvs_rcdl_excc_amt"),
    )


def buyable(body: JsonObject) -> Buyable:
    output = _output(body)
    return Buyable(quantity=integer(output, "nrcvb_buy_qty"),
                   amount=integer(output, "nrcvb_buy_amt"))


def executions(pages: list[JsonObject]) -> list[Execution]:
    found: list[Execution] = []
    for page in pages:
        for row in objects(page.get("output1")):
            order_no = text(row, "odno")
            if not order_no:
                continue
            found.append(
                Execution(
                    order_no=order_no,
                    branch=text(row, "ord_gno_brno"),
                    symbol=text(row, "pdno"),
                    side=Side.from_kis_code(text(row, "sll_buy_dvsn_cd")),
                    order_qty=integer(row, "ord_qty"),
                    order_price=decimal(row, "ord_unpr"),
                    order_time=text(row, "ord_tmd"),
                    filled_qty=integer(row, "tot_ccld_qty"),
                    avg_price=decimal(row, "avg_prvs"),
                    remaining_qty=integer(row, "rmn_qty"),
                    rejected_qty=integer(row, "rjct_qty"),
                    cancelled=text(row, "cncl_yn").upper() == "Y",
                    name=text(row, "prdt_name"),
                )
            )
    return found
