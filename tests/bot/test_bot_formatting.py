"""Notice formatting: stock name + code, side, KRW separators, KST times."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.formatting import (
    INDICATOR_ALERT,
    STRATEGY_ALERT,
    alert_template,
    format_notice,
    kis_time_today,
    kst_time,
    stock,
    won,
)
from storage.notices import Notice, NoticeError, NoticeKind

AT = datetime(2026, 5, 11, 0, 1, 2, tzinfo=UTC)  # 09:01:02 KST


def test_won_has_thousands_separators() -> None:
    assert won(1234500) == "1,234,500"
    assert won(0) == "0"


def test_times_are_shown_in_kst() -> None:
    assert kst_time(AT) == "2026-05-11 09:01:02 KST"


def test_kis_hhmmss_is_read_on_the_kst_date() -> None:
    late_utc = datetime(2026, 5, 10, 23, 30, tzinfo=UTC)  # already 05-11 in Korea
    moment = kis_time_today("090102", late_utc)
    assert kst_time(moment) == "2026-05-11 09:01:02 KST"


def test_stock_shows_name_and_code() -> None:
    assert stock("005930", "삼성전자") == "삼성전자 (005930)"
    assert stock("005930") == "005930"


def test_filled_notice_in_korean() -> None:
    notice = Notice(kind=NoticeKind.ORDER_FILLED, env="paper", at=AT, symbol="005930",
                    name="삼성전자", side="buy", quantity=1200, price=71500)
    text = format_notice(notice, "ko")
    assert "삼성전자 (005930)" in text
    assert "매수" in text and "1,200주" in text and "71,500원" in text
    assert "09:01:02 KST" in text and "모의투자" in text


def test_partial_fill_in_english_shows_progress() -> None:
    notice = Notice(kind=NoticeKind.ORDER_PARTIAL, env="real", at=AT, symbol="005930",
                    side="sell", quantity=3, price=70000, filled=3, ordered=10)
    text = format_notice(notice, "en")
    assert "Partially filled" in text and "sell" in text and "70,000 KRW" in text
    assert "3/10" in text and "real trading" in text


def test_refusal_reason_is_localized_when_it_has_a_key() -> None:
    notice = Notice(kind=NoticeKind.ORDER_REFUSED, env="paper", at=AT, symbol="005930",
                    side="buy", reason_key="amount_below_one_share",
                    reason_params={"amount": "50,000", "price": "71,500"})
    assert "50,000원으로는 1주(71,500원)" in format_notice(notice, "ko")
    assert "50,000 KRW does not buy one share at 71,500 KRW" in format_notice(notice, "en")


def test_failed_order_shows_kis_message_verbatim() -> None:
    notice = Notice(kind=NoticeKind.ORDER_FAILED, env="paper", at=AT, symbol="005930",
                    side="buy", quantity=1, reason="[APBK0919] 주문가능금액을 초과했습니다")
    assert "주문가능금액을 초과했습니다" in format_notice(notice, "en")


def test_every_kind_formats_in_both_languages() -> None:
    for kind in NoticeKind:
        for lang in ("ko", "en"):
            assert format_notice(Notice(kind=kind, env="paper", at=AT), lang)


def test_payload_round_trip_through_json() -> None:
    notice = Notice(kind=NoticeKind.ORDER_ACCEPTED, env="real", at=AT, symbol="005930",
                    name="삼성전자", side="buy", quantity=2, price=70000, order_type="limit",
                    comment="hi", order_no="0000123")
    back = Notice.from_payload(json.loads(json.dumps(notice.to_payload())))
    assert back == notice
    assert "지정가 70,000원" in format_notice(back, "ko")


def test_unknown_kind_is_rejected_without_echoing_the_payload() -> None:
    with pytest.raises(NoticeError) as info:
        Notice.from_payload({"kind": "secret-sauce"})
    assert "secret-sauce" not in str(info.value)


def test_alert_templates_quote_every_placeholder_and_parse_as_json() -> None:
    strategy = alert_template(STRATEGY_ALERT)
    assert json.loads(strategy)["quantity"] == "{{strategy.order.contracts}}"
    assert '"ticker":"{{ticker}}"' in strategy
    assert '"id":"{{strategy.order.id}}-{{timenow}}"' in strategy
    indicator = json.loads(alert_template(INDICATOR_ALERT))
    assert indicator["action"] == "buy" and indicator["quantity"] == "1"


# --- reasons: localized by key, literal otherwise, never a bare key ----------------------


def _refused(**fields: object) -> Notice:
    return Notice(kind=NoticeKind.ORDER_REFUSED, env="paper", at=AT, symbol="005930",
                  side="sell", **fields)  # type: ignore[arg-type]


def test_an_unknown_reason_key_falls_back_to_the_literal_reason() -> None:
    notice = _refused(reason_key="brand_new_guard", reason="a brand new guard said no")
    for lang in ("ko", "en"):
        text = format_notice(notice, lang)  # type: ignore[arg-type]
        assert "a brand new guard said no" in text
        assert "brand_new_guard" not in text


def test_an_unknown_key_without_a_literal_reason_shows_no_raw_key() -> None:
    notice = _refused(reason_key="brand_new_guard")
    assert "brand_new_guard" not in format_notice(notice, "en")
    assert "no reason given" in format_notice(notice, "en")
    assert "사유를 알 수 없습니다" in format_notice(notice, "ko")


def test_a_known_key_missing_its_parameters_falls_back_to_the_literal_reason() -> None:
    notice = _refused(reason_key="insufficient_holding",
                      reason="cannot sell 7 shares of 005930: 3 can be sold")
    assert "cannot sell 7 shares of 005930: 3 can be sold" in format_notice(notice, "ko")


def test_new_refusal_reasons_read_in_the_users_language() -> None:
    notice = _refused(reason_key="insufficient_holding", reason="literal",
                      reason_params={"quantity": "7", "sellable": "3"})
    assert "7주를 팔아야 하지만 지금 매도 가능한 수량은 3주" in format_notice(notice, "ko")
    assert "only 3 sh can be sold now" in format_notice(notice, "en")
    nothing = _refused(reason_key="nothing_to_do", reason_params={"held": "10"})
    assert "이미 목표 보유 수량(10주)" in format_notice(nothing, "ko")


def test_fill_not_ready_detail_loses_the_repeated_prefix() -> None:
    notice = _refused(reason_key="fill_not_ready", reason="fill notices are not ready",
                      reason_params={"detail": "fill notice not ready: invalid tr_key"})
    text = format_notice(notice, "en")
    assert "fill notices are not ready: invalid tr_key" in text
    assert "fill notice not ready: invalid" not in text
    empty = _refused(reason_key="fill_not_ready", reason_params={"detail": ""})
    assert "체결통보가 준비되지 않았습니다: -" in format_notice(empty, "ko")


def test_a_failed_inquiry_before_sizing_shows_no_zero_quantity() -> None:
    notice = Notice(kind=NoticeKind.ORDER_FAILED, env="paper", at=AT, symbol="005930",
                    side="buy", quantity=0, reason="[EGW00201] 초당 거래건수를 초과하였습니다")
    text = format_notice(notice, "en")
    assert "0 sh" not in text and "005930 buy" in text
    assert "Reason: [EGW00201]" in text
    assert "사유: [EGW00201]" in format_notice(notice, "ko")
