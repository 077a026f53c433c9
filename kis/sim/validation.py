"""Checks of order request bodies, refusing what KIS refuses. Pure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from kis.env import Environment
from kis.sim.accounts import SimAccount
from kis.sim.codes import KisRefusal, bad_input, gateway, refused, wrong_account
from kis.sim.market import Market
from kis.sim.orders import MARKET_LIKE, PlaceRequest, Side
from kis.ticks import is_on_tick

# TR ID -> (side, needs EXCG_ID_DVSN_CD)
ORDER_TR_IDS: dict[Environment, dict[str, tuple[Side, bool]]] = {
    Environment.REAL: {
        "TTTC0012U": (Side.BUY, True),
        "TTTC0011U": (Side.SELL, True),
        "TTTC0802U": (Side.BUY, False),
        "TTTC0801U": (Side.SELL, False),
    },
    Environment.PAPER: {
        "VTTC0012U": (Side.BUY, True),
        "VTTC0011U": (Side.SELL, True),
        "VTTC0802U": (Side.BUY, False),
        "VTTC0801U": (Side.SELL, False),
    },
}
ALL_ORD_DVSN = frozenset({f"{n:02d}" for n in range(8)} | {f"{n}" for n in range(11, 17)})
REAL_ONLY_ORD_DVSN = frozenset({"05", "06", "07", "11", "12", "13", "14", "15", "16"})
SIMULATED_ORD_DVSN = frozenset({"00", "01", "02", "03", "04"})
EXCHANGES = frozenset({"KRX", "NXT", "SOR"})
SLL_TYPES = frozenset({"", "01", "02", "05"})


def check_tr_id(
    env: Environment, tr_id: str, valid: Mapping[Environment, Collection[str]]
) -> None:
    """Refuse a TR ID that is missing, of the other environment, or of another service."""
    if tr_id in valid[env]:
        return
    if tr_id and tr_id in valid[env.other]:
        raise gateway("EGW02006" if env is Environment.PAPER else "EGW02004")
    raise gateway("OPSQ0002")


def string_body(body: object) -> dict[str, str]:
    """Every key UPPERCASE and every value a string, as KIS requires."""
    if not isinstance(body, dict):
        raise bad_input("JSON")
    out: dict[str, str] = {}
    for key, value in body.items():
        if not isinstance(key, str) or key != key.upper():
            raise bad_input(str(key).upper())
        if not isinstance(value, str):
            raise bad_input(key)
        out[key] = value
    return out


def _require(body: Mapping[str, str], name: str) -> str:
    if name not in body:
        raise bad_input(name)
    return body[name]


def _digits(body: Mapping[str, str], name: str) -> int:
    value = _require(body, name).strip()
    if not value.isdigit():
        raise bad_input(name)
    return int(value)


def check_account(body: Mapping[str, str], account: SimAccount) -> None:
    cano = _require(body, "CANO")
    product = _require(body, "ACNT_PRDT_CD")
    if cano != account.cano or product != account.product_code:
        raise wrong_account()


def parse_order_cash(
    env: Environment, tr_id: str, body: Mapping[str, str], account: SimAccount, market: Market
) -> PlaceRequest:
    side, needs_exchange = ORDER_TR_IDS[env][tr_id]
    check_account(body, account)
    symbol = _require(body, "PDNO")
    ord_dvsn = _require(body, "ORD_DVSN")
    if ord_dvsn not in ALL_ORD_DVSN:
        raise bad_input("ORD_DVSN")
    qty = _digits(body, "ORD_QTY")
    price_text = _require(body, "ORD_UNPR")
    if not price_text.strip().isdigit():
        raise bad_input("ORD_UNPR")
    price = int(price_text)
    exchange = body.get("EXCG_ID_DVSN_CD", "")
    if needs_exchange and exchange not in EXCHANGES:
        raise bad_input("EXCG_ID_DVSN_CD")
    exchange = exchange or "KRX"
    if body.get("SLL_TYPE", "") not in SLL_TYPES:
        raise bad_input("SLL_TYPE")
    if env is Environment.PAPER and (ord_dvsn in REAL_ONLY_ORD_DVSN or exchange != "KRX"):
        raise refused("90000000")
    if ord_dvsn not in SIMULATED_ORD_DVSN:
        raise refused("APBK1001")
    quote = market.get(symbol)
    if quote is None:
        raise refused("APBK0656")
    if qty < 1:
        raise refused("APBK0510")
    if ord_dvsn in MARKET_LIKE:
        if price != 0:
            raise refused("APBK0507")
    else:
        if price <= 0 or not is_on_tick(price, etf=quote.instrument.etf):
            raise refused("APBK0506")
        if not quote.lower <= price <= quote.upper:
            raise refused("APBK0919")
    return PlaceRequest(side, symbol, ord_dvsn, qty, price, exchange, tr_id, dict(body))


@dataclass(frozen=True, slots=True)
class RevisePlan:
    original_odno: str
    cancel: bool
    qty_all: bool
    qty: int
    price: int
    ord_dvsn: str


def parse_rvsecncl(env: Environment, body: Mapping[str, str], account: SimAccount) -> RevisePlan:
    """Revise/cancel body; a revised limit price is checked against the original's symbol."""
    check_account(body, account)
    _require(body, "KRX_FWDG_ORD_ORGNO")
    odno = _require(body, "ORGN_ODNO")
    ord_dvsn = _require(body, "ORD_DVSN")
    if ord_dvsn not in ALL_ORD_DVSN:
        raise bad_input("ORD_DVSN")
    code = _require(body, "RVSE_CNCL_DVSN_CD")
    if code not in ("01", "02"):
        raise bad_input("RVSE_CNCL_DVSN_CD")
    qty = _digits(body, "ORD_QTY")
    price = _digits(body, "ORD_UNPR")
    all_yn = _require(body, "QTY_ALL_ORD_YN")
    if all_yn not in ("Y", "N"):
        raise bad_input("QTY_ALL_ORD_YN")
    if body.get("EXCG_ID_DVSN_CD", "KRX") not in EXCHANGES:
        raise bad_input("EXCG_ID_DVSN_CD")
    if env is Environment.PAPER and ord_dvsn in REAL_ONLY_ORD_DVSN:
        raise refused("90000000")
    if all_yn == "N" and qty < 1:
        raise refused("APBK0510")
    if code == "01":
        if ord_dvsn not in SIMULATED_ORD_DVSN:
            raise refused("APBK1001")
        if ord_dvsn in MARKET_LIKE and price != 0:
            raise refused("APBK0507")
    return RevisePlan(odno, code == "02", all_yn == "Y", qty, price, ord_dvsn)


def check_limit_price(market: Market, symbol: str, price: int) -> None:
    quote = market.quote(symbol)
    if price <= 0 or not is_on_tick(price, etf=quote.instrument.etf):
        raise refused("APBK0506")
    if not quote.lower <= price <= quote.upper:
        raise refused("APBK0919")


__all__ = ["KisRefusal", "check_tr_id", "parse_order_cash", "parse_rvsecncl", "string_body"]
