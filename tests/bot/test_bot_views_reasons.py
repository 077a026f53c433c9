"""/log and /orders render stored reasons in the user's language; rows written before
reasons had keys show their stored text."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.views import log_message, orders_message
from kis.env import Environment
from storage.records import AlertRecord, AlertStatus, OrderRecord, OrderStatus

NOW = datetime(2026, 5, 11, 1, 0, tzinfo=UTC)


def _alert(**changes: object) -> AlertRecord:
    values: dict[str, object] = {
        "id": 1, "user_id": 1, "received_at": NOW, "raw_body": "{}",
        "parsed": {"symbol": "005930", "action": "sell",
                   "sizing": {"mode": "percent", "value": "50"}},
        "idempotency_key": None, "status": AlertStatus.REFUSED, "reason": None,
        "updated_at": NOW,
    }
    values.update(changes)
    return AlertRecord(**values)  # type: ignore[arg-type]


def _order(**changes: object) -> OrderRecord:
    values: dict[str, object] = {
        "id": 1, "alert_id": 1, "user_id": 1, "environment": Environment.PAPER,
        "symbol": "005930", "name": "삼성전자", "side": "buy", "order_type": "market",
        "quantity": 3, "price": None, "order_no": None, "branch": None,
        "status": OrderStatus.REJECTED, "reason": "[APBK0952] 주문가능금액을 초과",
        "msg_cd": "APBK0952", "filled_qty": 0, "filled_amount": 0, "created_at": NOW,
        "sent_at": NOW, "updated_at": NOW,
    }
    values.update(changes)
    return OrderRecord(**values)  # type: ignore[arg-type]


def test_a_keyed_reason_reads_in_each_language() -> None:
    alert = _alert(reason="cannot sell 005930: no shares held", reason_key="not_held",
                   reason_params={})
    ko = log_message("ko", [alert])
    assert "매도 005930 50%" in ko and "거절: 보유하지 않은 종목은 매도할 수 없습니다" in ko
    assert "cannot sell" not in ko
    assert "refused: cannot sell a stock that is not held" in log_message("en", [alert])


def test_rows_from_before_keys_show_their_stored_text() -> None:
    old_alert = _alert(status=AlertStatus.FAILED, reason="order failed: [APBK0952] 초과")
    assert "실패: order failed: [APBK0952] 초과" in log_message("ko", [old_alert])
    old_order = _order()
    assert "KIS 거부: [APBK0952] 주문가능금액을 초과" in orders_message("ko", [old_order])


def test_a_key_with_missing_figures_falls_back_to_the_text() -> None:
    alert = _alert(reason="amount too small", reason_key="amount_below_one_share",
                   reason_params={"amount": "1,000"})
    assert "거절: amount too small" in log_message("ko", [alert])
