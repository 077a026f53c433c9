"""US stocks through KIS's overseas API: request fields and answers (KIS.md section 13). Pure.

The exchange codes differ between calls: orders, balance and executions take
`NASD`/`NYSE`/`AMEX`, the price inquiry takes `NAS`/`NYS`/`AMS`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Final

from kis._wire import JsonObject, as_object, decimal, integer, objects, text
from kis.env import Environment
from kis.models import (
    Account,
    BuyingPower,
    Execution,
    OverseasHolding,
    OverseasOrderRequest,
    OverseasQuote,
    Side,
)

ORDER_PATH: Final = "/uapi/overseas-stock/v1/trading/order"
REVISE_CANCEL_PATH: Final = "/uapi/overseas-stock/v1/trading/order-rvsecncl"
PRICE_PATH: Final = "/uapi/overseas-price/v1/quotations/price"
BALANCE_PATH: Final = "/uapi/overseas-stock/v1/trading/inquire-balance"
EXECUTIONS_PATH: Final = "/uapi/overseas-stock/v1/trading/inquire-ccnl"
BUYING_POWER_PATH: Final = "/uapi/overseas-stock/v1/trading/inquire-psamount"

US_EXCHANGES: Final = ("NASD", "NYSE", "AMEX")
# Order code -> the code the price inquiry (EXCD) wants.
PRICE_EXCHANGE: Final = {"NASD": "NAS", "NYSE": "NYS", "AMEX": "AMS"}
# Real accounts read every US exchange under NASD; paper reads each on its own.
BALANCE_EXCHANGES: Final = {
    Environment.REAL: ("NASD",),
    Environment.PAPER: US_EXCHANGES,
}
CURRENCY: Final = "USD"


def _exchange(code: str) -> str:
    if code not in PRICE_EXCHANGE:
        raise ValueError(f"not a US order exchange code: {code!r}")
    return code


def price_text(price: Decimal) -> str:
    """`OVRS_ORD_UNPR`: plain decimals, never an exponent ("190.12", "0.1234", "0")."""
    if price == 0:
        return "0"
    return format(price.normalize(), "f")


def order_body(account: Account, order: OverseasOrderRequest) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "OVRS_EXCG_CD": _exchange(order.exchange),
        "PDNO": order.symbol,
        "ORD_QTY": str(order.quantity),
        "OVRS_ORD_UNPR": price_text(order.price),
        "CTAC_TLNO": "",
        "MGCO_APTM_ODNO": "",
        "SLL_TYPE": "00" if order.side is Side.SELL else "",
        "ORD_SVR_DVSN_CD": "0",
        "ORD_DVSN": order.ord_dvsn,
    }


def cancel_body(
    account: Account, *, exchange: str, symbol: str, order_no: str, quantity: int
) -> dict[str, str]:
    """Cancel (`RVSE_CNCL_DVSN_CD` 02) `quantity` shares of an order; price "0"."""
    if quantity < 1:
        raise ValueError("an overseas cancel names the quantity to cancel")
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "OVRS_EXCG_CD": _exchange(exchange),
        "PDNO": symbol,
        "ORGN_ODNO": order_no,
        "RVSE_CNCL_DVSN_CD": "02",
        "ORD_QTY": str(quantity),
        "OVRS_ORD_UNPR": "0",
        "MGCO_APTM_ODNO": "",
        "ORD_SVR_DVSN_CD": "0",
    }


def price_params(exchange: str, symbol: str) -> dict[str, str]:
    return {"AUTH": "", "EXCD": PRICE_EXCHANGE[_exchange(exchange)], "SYMB": symbol}


def balance_params(account: Account, exchange: str) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "OVRS_EXCG_CD": _exchange(exchange),
        "TR_CRCY_CD": CURRENCY,
    }


def executions_params(
    account: Account, env: Environment, *, start: date, end: date, symbol: str, exchange: str
) -> dict[str, str]:
    """`inquire-ccnl`: dates are New York dates; no order-number filter exists, and paper
    takes no symbol, exchange, side or fill-state filter (KIS.md section 13)."""
    real = env is Environment.REAL
    # REAL asks for every symbol / exchange with "%"; paper only takes "".
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "PDNO": (symbol or "%") if real else "",
        "ORD_STRT_DT": start.strftime("%Y%m%d"),
        "ORD_END_DT": end.strftime("%Y%m%d"),
        "SLL_BUY_DVSN": "00",
        "CCLD_NCCS_DVSN": "00",
        "OVRS_EXCG_CD": (_exchange(exchange) if exchange else "%") if real else "",
        "SORT_SQN": "DS",
        "ORD_DT": "",
        "ORD_GNO_BRNO": "",
        "ODNO": "",
    }


def buying_power_params(
    account: Account, *, exchange: str, symbol: str, price: Decimal
) -> dict[str, str]:
    return {
        "CANO": account.cano,
        "ACNT_PRDT_CD": account.product_code,
        "OVRS_EXCG_CD": _exchange(exchange),
        "OVRS_ORD_UNPR": price_text(price),
        "ITEM_CD": symbol,
    }


def quote(symbol: str, exchange: str, body: JsonObject) -> OverseasQuote:
    output = as_object(body.get("output"))
    if not output:
        raise ValueError("price answer without output")
    zdiv = text(output, "zdiv")
    return OverseasQuote(
        symbol=symbol,
        exchange=exchange,
        last=decimal(output, "last"),
        base=decimal(output, "base"),
        decimals=int(zdiv) if zdiv.isdigit() else 4,
        # `ordy` reads "매수가능" when buying is allowed; anything else is not.
        orderable=text(output, "ordy") in ("", "매수가능", "Y"),
    )


def holdings(pages: list[JsonObject]) -> list[OverseasHolding]:
    found: dict[str, OverseasHolding] = {}
    for page in pages:
        for row in objects(page.get("output1")):
            symbol = text(row, "ovrs_pdno")
            quantity = integer(row, "ovrs_cblc_qty")
            sellable = integer(row, "ord_psbl_qty")
            if not symbol or (quantity == 0 and sellable == 0):
                continue
            found[symbol] = OverseasHolding(
                symbol=symbol,
                name=text(row, "ovrs_item_name"),
                exchange=text(row, "ovrs_excg_cd"),
                quantity=quantity,
                sellable=sellable,
                avg_price=decimal(row, "pchs_avg_pric"),
                price=decimal(row, "now_pric2"),
                profit=decimal(row, "frcr_evlu_pfls_amt"),
                profit_rate=decimal(row, "evlu_pfls_rt"),
            )
    return list(found.values())


def executions(pages: list[JsonObject]) -> list[Execution]:
    found: list[Execution] = []
    for page in pages:
        for row in objects(page.get("output")):
            order_no = text(row, "odno")
            if not order_no:
                continue
            ordered = integer(row, "ft_ord_qty")
            filled = integer(row, "ft_ccld_qty")
            refused = bool(text(row, "rjct_rson"))
            found.append(
                Execution(
                    order_no=order_no,
                    branch=text(row, "ord_gno_brno"),
                    symbol=text(row, "pdno"),
                    side=Side.from_kis_code(text(row, "sll_buy_dvsn_cd")),
                    order_qty=ordered,
                    order_price=decimal(row, "ft_ord_unpr3"),
                    order_time=text(row, "ord_tmd"),
                    filled_qty=filled,
                    avg_price=decimal(row, "ft_ccld_unpr3"),
                    remaining_qty=integer(row, "nccs_qty"),
                    rejected_qty=ordered - filled if refused else 0,
                    cancelled=False,
                    name=text(row, "prdt_name"),
                )
            )
    return found


def buying_power(body: JsonObject) -> BuyingPower:
    output = as_object(body.get("output")) or {}
    return BuyingPower(
        amount=decimal(output, "ord_psbl_frcr_amt"),
        quantity=integer(output, "max_ord_psbl_qty"),
    )
