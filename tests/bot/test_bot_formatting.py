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
from bot.notices import Notice, NoticeError, NoticeKind

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
