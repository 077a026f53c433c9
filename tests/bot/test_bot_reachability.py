"""TradingView's reachability rules for the webhook URL, and where the bot shows them."""

from __future__ import annotations

import pytest

from bot.reachability import Problem, describe, tradingview_problems
from bot.views import reachability_warning, status_message, webhook_message


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com",
        "https://hooks.example.com:443/base",
        "https://hooks.example.com:80",
        "https://8.8.8.8",
    ],
)
def test_a_public_https_url_on_443_or_80_is_reachable(url: str) -> None:
    assert tradingview_problems(url) == []


@pytest.mark.parametrize(
    ("url", "problems"),
    [
        ("http://localhost:8080", [Problem.NOT_HTTPS, Problem.LOCAL_HOST, Problem.PORT]),
        ("http://hooks.example.com", [Problem.NOT_HTTPS]),
        ("https://127.0.0.1", [Problem.LOCAL_HOST]),
        ("https://192.168.1.20", [Problem.LOCAL_HOST]),
        ("https://10.0.0.5", [Problem.LOCAL_HOST]),
        ("https://172.16.3.4", [Problem.LOCAL_HOST]),
        ("https://169.254.10.1", [Problem.LOCAL_HOST]),
        ("https://[::1]", [Problem.LOCAL_HOST]),
        ("https://[fe80::1]", [Problem.LOCAL_HOST]),
        ("https://raspberrypi.local", [Problem.LOCAL_HOST]),
        ("https://myserver", [Problem.LOCAL_HOST]),
        ("https://hooks.example.com:8443", [Problem.PORT]),
        ("ftp://hooks.example.com", [Problem.NOT_A_URL]),
        ("https://hooks.example.com:99999", [Problem.NOT_A_URL]),
    ],
)
def test_tradingview_cannot_reach(url: str, problems: list[Problem]) -> None:
    assert tradingview_problems(url) == problems


def test_the_operator_reads_the_problems_in_english() -> None:
    text = describe(tradingview_problems("http://localhost:8080"))
    assert "not https" in text and "port is not 80 or 443" in text


def test_webhook_message_warns_under_an_unreachable_url_only() -> None:
    bad = webhook_message("ko", "http://localhost:8080/hook/abc").as_kwargs()["text"]
    assert "TradingView는 이 주소로 알림을 보낼 수 없습니다" in bad
    assert "https가 아닙니다" in bad and "포트가 80이나 443이 아닙니다" in bad
    assert bad.index("/hook/abc") < bad.index("⚠️")
    good = webhook_message("en", "https://hooks.example.com/hook/abc").as_kwargs()["text"]
    assert "⚠️" not in good
    assert reachability_warning("en", "https://hooks.example.com/hook/abc") is None


def test_status_warns_when_the_public_url_is_left_at_its_default() -> None:
    from datetime import UTC, datetime

    from kis.env import Environment
    from storage.records import UserRecord

    user = UserRecord(1, 1, 1, "ko", Environment.PAPER, False, datetime.now(UTC))
    text = status_message("ko", user, None, None, 0, "http://localhost:8080")
    assert "⚠️ TradingView는 이 주소로 알림을 보낼 수 없습니다" in text
    assert "⚠️" not in status_message("ko", user, None, None, 0, "https://hooks.example.com")
