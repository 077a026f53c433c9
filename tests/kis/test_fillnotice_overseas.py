"""The overseas fill notice (H0GSCNI0/9): 25 fields, prices with 4 implied decimals,
a missing time stamped with the time of receipt (KIS.md section 13)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kis.fillnotice import FrameError, NoticeKind, notice_from_overseas_fields

RECEIVED = datetime(2026, 3, 9, 14, 31, 5, tzinfo=UTC)  # 23:31:05 KST


def record(**over: str) -> list[str]:
    fields = {
        "CUST_ID": "moademo", "ACNT_NO": "1234567801", "ODER_NO": "0000000042",
        "OODER_NO": "", "SELN_BYOV_CLS": "02", "RCTF_CLS": "0", "ODER_KIND2": "00",
        "STCK_SHRN_ISCD": "AAPL", "CNTG_QTY": "3", "CNTG_UNPR": "001480100",
        "STCK_CNTG_HOUR": "233100", "RFUS_YN": "0", "CNTG_YN": "2", "ACPT_YN": "2",
        "BRNC_NO": "00950", "ODER_QTY": "5", "ACNT_NAME": "홍길동", "CNTG_ISNM": "APPLE INC",
        "ODER_COND": "6", "DEBT_GB": "", "DEBT_DATE": "", "START_TM": "", "END_TM": "",
        "TM_DIV_TP": "", "CNTG_UNPR12": "",
    }
    fields.update(over)
    return list(fields.values())


def test_fill_decoded_with_implied_decimals() -> None:
    notice = notice_from_overseas_fields(record(), RECEIVED)
    assert notice.kind is NoticeKind.FILLED
    assert (notice.symbol, notice.quantity, notice.price) == ("AAPL", 3, Decimal("148.01"))
    assert (notice.order_qty, notice.market, notice.exchange) == (5, "US", "NASD")
    assert notice.time == "233100" and notice.name == "APPLE INC"


@pytest.mark.parametrize(("raw", "price"), [("000001234", "0.1234"), ("012345678", "1234.5678")])
def test_sub_dollar_and_large_prices(raw: str, price: str) -> None:
    assert notice_from_overseas_fields(record(CNTG_UNPR=raw), RECEIVED).price == Decimal(price)


def test_missing_time_is_the_time_of_receipt_in_kst() -> None:
    notice = notice_from_overseas_fields(record(STCK_CNTG_HOUR=""), RECEIVED)
    assert notice.time == "233105"


def test_acceptance_carries_the_order_in_cntg_fields() -> None:
    notice = notice_from_overseas_fields(
        record(CNTG_YN="1", ACPT_YN="1", ODER_QTY="", CNTG_QTY="5", CNTG_UNPR="001500000"),
        RECEIVED,
    )
    assert notice.kind is NoticeKind.ACCEPTED
    assert (notice.order_qty, notice.order_price) == (5, Decimal("150"))


@pytest.mark.parametrize(("cond", "exchange"), [("6", "NASD"), ("7", "NYSE"), ("8", "AMEX")])
def test_exchange_from_oder_cond(cond: str, exchange: str) -> None:
    assert notice_from_overseas_fields(record(ODER_COND=cond), RECEIVED).exchange == exchange


def test_wrong_field_count_refused() -> None:
    with pytest.raises(FrameError, match="25"):
        notice_from_overseas_fields(record()[:-1], RECEIVED)
