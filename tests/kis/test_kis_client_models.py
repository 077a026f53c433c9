"""Models and error classification used by the KIS client."""

from __future__ import annotations

import httpx
import pytest

from kis._wire import refusal
from kis.env import Environment
from kis.errors import (
    KisApiError,
    KisAuthError,
    KisRateLimited,
    KisServerError,
    KisTokenInvalid,
    KisTokenIssueTooSoon,
    api_error,
)
from kis.models import Account, AppCredentials, OrderRequest, OrderType, Side
from kis.secret import Secret


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12345678-01", "12345678-01"), ("12345678", "12345678-01"),
     ("1234567801", "12345678-01"), (" 87654321-22 ", "87654321-22")],
)
def test_account_parse(text: str, expected: str) -> None:
    account = Account.parse(text)
    assert str(account) == expected
    assert account.cano == expected[:8]


@pytest.mark.parametrize("text", ["", "1234567-01", "12345678-1", "abcdefgh-01", "123456789",
                                  "12345678-0a"])
def test_account_parse_rejects_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="12345678-01"):
        Account.parse(text)


def test_order_request_validation() -> None:
    assert OrderRequest("005930", Side.BUY, 1).order_type is OrderType.MARKET
    with pytest.raises(ValueError, match="at least 1"):
        OrderRequest("005930", Side.BUY, 0)
    with pytest.raises(ValueError, match="price"):
        OrderRequest("005930", Side.BUY, 1, OrderType.LIMIT)
    with pytest.raises(ValueError, match="market"):
        OrderRequest("005930", Side.BUY, 1, OrderType.MARKET, 100)
    with pytest.raises(ValueError, match="6 characters"):
        OrderRequest("5930", Side.BUY, 1)
    assert OrderType.MARKET.ord_dvsn == "01" and OrderType.LIMIT.ord_dvsn == "00"


def test_credentials_repr_masks_key_and_secret() -> None:
    key = "PSkey-0123456789-abcdefghij-XYZW"
    creds = AppCredentials(key, Secret("s" * 180), Environment.PAPER)
    assert "0123456789" not in repr(creds)
    assert "ssssssss" not in repr(creds)
    assert repr(creds).endswith("env='paper')")


@pytest.mark.parametrize(
    ("msg_cd", "status", "cls"),
    [("EGW00201", 500, KisRateLimited), ("EGW00121", 500, KisTokenInvalid),
     ("EGW00122", 500, KisTokenInvalid), ("EGW00123", 500, KisTokenInvalid),
     ("EGW00133", 403, KisTokenIssueTooSoon), ("OPSQ0002", 500, KisServerError),
     ("EGW00103", 403, KisAuthError), ("APBK0919", 500, KisApiError),
     ("APBK0919", 200, KisApiError)],
)
def test_classification_on_msg_cd_whatever_the_status(
    msg_cd: str, status: int, cls: type[KisApiError]
) -> None:
    error = api_error(rt_cd="1", msg_cd=msg_cd, msg1="m", tr_id="T", http_status=status)
    assert type(error) is cls


def test_refusal_reads_both_answer_shapes() -> None:
    ok = httpx.Response(500, json={"rt_cd": "0", "msg_cd": "X", "msg1": ""})
    assert refusal(ok, {"rt_cd": "0"}, tr_id="T") is None
    oauth = httpx.Response(403)
    error = refusal(oauth, {"error_code": "EGW00105", "error_description": "bad secret"},
                    tr_id=None, oauth=True)
    assert isinstance(error, KisAuthError)
    assert (error.msg_cd, error.msg1, error.http_status) == ("EGW00105", "bad secret", 403)
    html = refusal(httpx.Response(502), None, tr_id="T")
    assert isinstance(html, KisServerError) and html.http_status == 502


def test_account_numbers_are_ascii_digits_only() -> None:
    for text in ("１２３４５６７８-01", "١٢٣٤٥٦٧٨", "12345678-０１"):
        with pytest.raises(ValueError):
            Account.parse(text)
