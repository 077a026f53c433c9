"""Inquiry answers (price, balance, buyable, daily executions) and paging. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from kis.sim.accounts import SimAccount
from kis.sim.codes import bad_input, wrong_account
from kis.sim.market import Market, Quote
from kis.sim.orders import MARKET_LIKE, OrderKind, OrderStatus, Side, SimOrder

BALANCE_PARAMS = (
    "CANO", "ACNT_PRDT_CD", "AFHR_FLPR_YN", "OFL_YN", "INQR_DVSN", "UNPR_DVSN",
    "FUND_STTL_ICLD_YN", "FNCG_AMT_AUTO_RDPT_YN", "PRCS_DVSN", "CTX_AREA_FK100",
    "CTX_AREA_NK100",
)
PSBL_PARAMS = (
    "CANO", "ACNT_PRDT_CD", "PDNO", "ORD_UNPR", "ORD_DVSN", "CMA_EVLU_AMT_ICLD_YN",
    "OVRS_ICLD_YN",
)
CCLD_PARAMS = (
    "CANO", "ACNT_PRDT_CD", "INQR_STRT_DT", "INQR_END_DT", "SLL_BUY_DVSN_CD", "INQR_DVSN",
    "PDNO", "CCLD_DVSN", "ORD_GNO_BRNO", "ODNO", "INQR_DVSN_3", "INQR_DVSN_1",
    "CTX_AREA_FK100", "CTX_AREA_NK100",
)
_ORD_DVSN_NAMES = {"00": "지정가", "01": "시장가", "02": "조건부지정가", "03": "최유리지정가",
                   "04": "최우선지정가"}

Row = dict[str, str]


def require(query: Mapping[str, str], names: Sequence[str]) -> None:
    """KIS wants every documented parameter present (empty is fine)."""
    for name in names:
        if name not in query:
            raise bad_input(name)


def check_account(query: Mapping[str, str], account: SimAccount) -> None:
    if query.get("CANO") != account.cano or query.get("ACNT_PRDT_CD") != account.product_code:
        raise wrong_account()


def _sign(quote: Quote) -> str:
    base = quote.instrument.base_price
    if quote.price == quote.upper:
        return "1"
    if quote.price == quote.lower:
        return "4"
    if quote.price > base:
        return "2"
    return "3" if quote.price == base else "5"


def _rate(part: float, whole: float) -> str:
    return f"{(part / whole * 100) if whole else 0.0:.2f}"


def price_output(quote: Quote) -> Row:
    inst = quote.instrument
    change = quote.price - inst.base_price
    return {
        "iscd_stat_cls_code": "55",
        "marg_rate": "20.00",
        "rprs_mrkt_kor_name": inst.market,
        "bstp_kor_isnm": inst.sector,
        "temp_stop_yn": "Y" if quote.suspended else "N",
        "stck_prpr": str(quote.price),
        "prdy_vrss": str(change),
        "prdy_vrss_sign": _sign(quote),
        "prdy_ctrt": _rate(change, inst.base_price),
        "acml_vol": str(quote.volume),
        "stck_oprc": str(inst.base_price),
        "stck_hgpr": str(quote.high),
        "stck_lwpr": str(quote.low),
        "stck_mxpr": str(quote.upper),
        "stck_llam": str(quote.lower),
        "stck_sdpr": str(inst.base_price),
        "aspr_unit": str(quote.tick()),
        "hts_deal_qty_unit_val": "1",
        "stck_shrn_iscd": inst.symbol,
    }


def balance_rows(account: SimAccount, market: Market) -> list[Row]:
    rows = []
    for symbol, qty in account.holdings.items():
        if qty <= 0:
            continue
        quote = market.get(symbol)
        price = quote.price if quote else 0
        avg = account.avg_prices.get(symbol, float(quote.instrument.base_price if quote else 0))
        bought = round(avg * qty)
        value = price * qty
        change = price - (quote.instrument.base_price if quote else 0)
        rows.append(
            {
                "pdno": symbol,
                "prdt_name": quote.instrument.name if quote else "",
                "trad_dvsn_name": "현금",
                "bfdy_buy_qty": "0",
                "bfdy_sll_qty": "0",
                "thdt_buyqty": "0",
                "thdt_sll_qty": "0",
                "hldg_qty": str(qty),
                "ord_psbl_qty": str(account.sellable(symbol)),
                "pchs_avg_pric": f"{avg:.4f}",
                "pchs_amt": str(bought),
                "prpr": str(price),
                "evlu_amt": str(value),
                "evlu_pfls_amt": str(value - bought),
                "evlu_pfls_rt": _rate(value - bought, bought),
                "evlu_erng_rt": _rate(value - bought, bought),
                "loan_dt": "",
                "loan_amt": "0",
                "stln_slng_chgs": "0",
                "expd_dt": "",
                "fltt_rt": _rate(change, price or 1),
                "bfdy_cprs_icdc": str(change),
                "item_mgna_rt_name": "",
                "grta_rt_name": "",
                "sbst_pric": "0",
                "stck_loan_unpr": "0.0000",
            }
        )
    return rows


def balance_summary(account: SimAccount, market: Market) -> Row:
    bought = 0
    value = 0
    for symbol, qty in account.holdings.items():
        quote = market.get(symbol)
        price = quote.price if quote else 0
        avg = account.avg_prices.get(symbol, float(quote.instrument.base_price if quote else 0))
        bought += round(avg * qty)
        value += price * qty
    return {
        "dnca_tot_amt": str(account.cash),
        "nxdy_excc_amt": str(account.available_cash),
        "prvs_rcdl_excc_amt": str(account.available_cash),
        "cma_evlu_amt": "0",
        "bfdy_buy_amt": "0",
        "thdt_buy_amt": "0",
        "nxdy_auto_rdpt_amt": "0",
        "bfdy_sll_amt": "0",
        "thdt_sll_amt": "0",
        "d2_auto_rdpt_amt": "0",
        "bfdy_tlex_amt": "0",
        "thdt_tlex_amt": "0",
        "tot_loan_amt": "0",
        "scts_evlu_amt": str(value),
        "tot_evlu_amt": str(value + account.cash),
        "nass_amt": str(value + account.cash),
        "fncg_gld_auto_rdpt_yn": "",
        "pchs_amt_smtl_amt": str(bought),
        "evlu_amt_smtl_amt": str(value),
        "evlu_pfls_smtl_amt": str(value - bought),
        "tot_stln_slng_chgs": "0",
        "bfdy_tot_asst_evlu_amt": str(value + account.cash),
        "asst_icdc_amt": "0",
        "asst_icdc_erng_rt": "0.00000000",
    }


def realised_summary(account: SimAccount, market: Market, day: str) -> Row:
    """`inquire-balance-rlz-pl` output2: the balance summary plus today's realised P&L."""
    realised = account.realised.get(day, 0)
    cost = account.realised_cost.get(day, 0)
    return {
        **balance_summary(account, market),
        "rlzt_pfls": str(realised),
        "rlzt_erng_rt": _rate(realised, cost),
        "real_evlu_pfls": "0",
        "real_evlu_pfls_erng_rt": "0.00",
    }


def buyable(account: SimAccount, market: Market, query: Mapping[str, str]) -> Row:
    symbol = query.get("PDNO", "")
    quote = market.get(symbol) if symbol else None
    if symbol and quote is None:
        raise bad_input("PDNO")
    price_text = query.get("ORD_UNPR", "").strip() or "0"
    if not price_text.isdigit():
        raise bad_input("ORD_UNPR")
    ord_dvsn = query.get("ORD_DVSN", "")
    price = int(price_text)
    if quote is not None and (ord_dvsn in MARKET_LIKE or price == 0):
        price = quote.upper  # market buys are sized at the upper limit
    cash = max(0, account.available_cash)
    qty = cash // price if price > 0 else 0
    return {
        "ord_psbl_cash": str(cash),
        "ord_psbl_sbst": "0",
        "ruse_psbl_amt": "0",
        "fund_rpch_chgs": "0",
        "psbl_qty_calc_unpr": str(price),
        "nrcvb_buy_amt": str(cash),
        "nrcvb_buy_qty": str(qty),
        "max_buy_amt": str(cash),
        "max_buy_qty": str(qty),
        "cma_evlu_amt": "0",
        "ovrs_re_use_amt_wcrc": "0",
        "ord_psbl_frcr_amt_wcrc": "0",
    }


def select_orders(
    orders: Sequence[SimOrder], account: SimAccount, query: Mapping[str, str]
) -> list[SimOrder]:
    start, end = query["INQR_STRT_DT"], query["INQR_END_DT"]
    for name, value in (("INQR_STRT_DT", start), ("INQR_END_DT", end)):
        if len(value) != 8 or not value.isdigit():
            raise bad_input(name)
    side = query["SLL_BUY_DVSN_CD"]
    if side not in ("00", "01", "02"):
        raise bad_input("SLL_BUY_DVSN_CD")
    ccld = query["CCLD_DVSN"]
    if ccld not in ("00", "01", "02"):
        raise bad_input("CCLD_DVSN")
    if query["INQR_DVSN"] not in ("00", "01"):
        raise bad_input("INQR_DVSN")
    symbol = query["PDNO"].strip()
    odno = query["ODNO"].strip()
    chosen = []
    for order in orders:
        if order.app_key != account.app_key or not start <= order.date <= end:
            continue
        if side != "00" and order.side.value != side:
            continue
        if symbol and order.symbol != symbol:
            continue
        if odno and order.odno != odno.zfill(10):
            continue
        if ccld == "01" and order.filled_qty == 0:
            continue
        if ccld == "02" and order.remaining == 0:
            continue
        chosen.append(order)
    if query["INQR_DVSN"] == "00":  # 00: newest first, 01: oldest first
        chosen.reverse()
    return chosen


def ccld_row(order: SimOrder) -> Row:
    cancelled = order.kind is OrderKind.CANCEL or order.status is OrderStatus.CANCELLED
    avg = round(order.avg_price)
    return {
        "ord_dt": order.date,
        "ord_gno_brno": order.orgno,
        "odno": order.odno,
        "orgn_odno": order.original_odno,
        "ord_dvsn_name": _ORD_DVSN_NAMES.get(order.ord_dvsn, ""),
        "sll_buy_dvsn_cd": order.side.value,
        "sll_buy_dvsn_cd_name": "매수" if order.side is Side.BUY else "매도",
        "pdno": order.symbol,
        "prdt_name": order.name,
        "ord_qty": str(order.qty),
        "ord_unpr": str(order.price),
        "ord_tmd": order.time,
        "tot_ccld_qty": str(order.filled_qty),
        "avg_prvs": str(avg),
        "cncl_yn": "Y" if cancelled else "N",
        "tot_ccld_amt": str(order.filled_amount),
        "loan_dt": "",
        "ordr_empno": "OpnAPI",
        "ord_dvsn_cd": order.ord_dvsn,
        "cncl_cfrm_qty": str(order.cancelled_qty),
        "rmn_qty": str(order.remaining),
        "rjct_qty": str(order.rejected_qty),
        "ccld_cndt_name": "없음",
        "inqr_ipad_addr": "",
        "cpbc_ordp_ord_rcit_dvsn_cd": "",
        "cpbc_ordp_infm_mthd_dvsn_cd": "",
        "infm_tmd": order.fills[-1].time if order.fills else "",
        "ctac_tlno": "",
        "prdt_type_cd": "300",
        "excg_dvsn_cd": "02",
        "cpbc_ordp_mtrl_dvsn_cd": "",
        "ord_orgno": order.orgno,
        "rsvn_ord_end_dt": "",
        "excg_id_dvsn_cd": order.exchange,
        "stpm_cndt_pric": "0",
        "stpm_efct_occr_dtmd": "",
    }


def ccld_summary(orders: Sequence[SimOrder]) -> Row:
    qty = sum(o.qty for o in orders if o.kind is not OrderKind.CANCEL)
    filled = sum(o.filled_qty for o in orders)
    amount = sum(o.filled_amount for o in orders)
    return {
        "tot_ord_qty": str(qty),
        "tot_ccld_qty": str(filled),
        "tot_ccld_amt": str(amount),
        "prsm_tlex_smtl": "0",
        "pchs_avg_pric": f"{(amount / filled) if filled else 0:.4f}",
    }


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    tr_cont: str  # "M" more pages, "D" last
    fk100: str
    nk100: str


def paginate(
    rows: list[Row],
    size: int,
    tr_cont: str,
    query: Mapping[str, str],
    account: SimAccount,
    ctx: str = "100",
) -> Page:
    """One page of `rows`. Continuing needs request header `tr_cont: N` and the NK100
    (overseas: NK200) context from the previous answer, as at KIS; without `N` the first
    page comes back."""
    offset = 0
    name = f"CTX_AREA_NK{ctx}"
    context = query.get(name, "").strip()
    if tr_cont == "N" and context:
        owner, _, position = context.rpartition("^")
        if owner != account.cano or not position.isdigit():
            raise bad_input(name)
        offset = int(position)
    end = offset + size
    more = end < len(rows)
    return Page(
        rows=rows[offset:end],
        tr_cont="M" if more else "D",
        fk100=f"{account.cano}^{account.product_code}^",
        nk100=f"{account.cano}^{min(end, len(rows))}",
    )
