"""Secrets never show: not in logs (any level), reprs, str() or exception messages."""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from kis.client import BALANCE_PATH, ORDER_PATH, PRICE_PATH, KisClient
from kis.env import Endpoints, Environment
from kis.errors import KisApiError, KisError, KisTransportError, OrderOutcomeUnknown
from kis.models import Account, AppCredentials, OrderRequest, Side
from kis.secret import Secret
from kis.tokenstore import MemoryTokenStore, StoredCredential

BASE = "https://kis.test:9443"
ENDPOINTS = Endpoints(rest={Environment.REAL: BASE, Environment.PAPER: BASE}, ws={})
APP_KEY = "PSAPPKEYq1w2e3r4t5y6u7i8o9p0a1s2d3f4"
APP_SECRET = "SeCrEtVaLuE" + "Zx9" * 56 + "END"
TOKENS = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.first",
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.second",
)
APPROVAL = "a1b2c3d4-e5f6-7890-abcd-approvalkey00"
SECRETS = (APP_SECRET, *TOKENS, APPROVAL)
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, "a secret leaked"
        assert secret[-12:] not in text, "part of a secret leaked"


def token(value: str) -> httpx.Response:
    return httpx.Response(200, json={"access_token": value, "token_type": "Bearer",
                                     "expires_in": 86400,
                                     "access_token_token_expired": "2030-01-01 00:00:00"})


async def no_wait(seconds: float) -> None:
    return None


async def test_no_secret_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    creds = AppCredentials(APP_KEY, Secret(APP_SECRET), Environment.REAL)
    account = Account.parse("12345678-01")
    texts: list[str] = []
    errors: list[KisError] = []
    t = [0.0]
    with respx.mock(assert_all_mocked=True) as router:
        router.post(BASE + "/oauth2/tokenP").mock(
            side_effect=[token(TOKENS[0]), token(TOKENS[1])])
        router.post(BASE + "/oauth2/Approval").mock(
            return_value=httpx.Response(200, json={"approval_key": APPROVAL}))
        router.post(BASE + "/oauth2/revokeP").mock(
            return_value=httpx.Response(200, json={"code": 200, "message": "ok"}))
        router.post(BASE + ORDER_PATH).mock(side_effect=[
            httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00123", "msg1": "expired"}),
            httpx.Response(500, json={"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "too fast"}),
            httpx.Response(200, json={"rt_cd": "0", "msg_cd": "APBK0013", "msg1": "ok",
                                      "output": {"ODNO": "1", "KRX_FWDG_ORD_ORGNO": "2",
                                                 "ORD_TMD": "090000"}}),
            httpx.ReadTimeout("timed out"),
            httpx.ConnectError("refused"),
            # KIS echoing what it was sent must not carry secrets into our messages.
            httpx.Response(500, json={"rt_cd": "7", "msg_cd": "APBK9999",
                                      "msg1": f"bad {APP_SECRET} {TOKENS[1]}"}),
        ])
        router.get(BASE + PRICE_PATH).mock(return_value=httpx.Response(
            200, json={"rt_cd": "0", "msg_cd": "", "msg1": "", "output": {"stck_prpr": "1"}}))
        router.get(BASE + BALANCE_PATH).mock(return_value=httpx.Response(
            200, json={"rt_cd": "0", "msg_cd": "", "msg1": "", "output1": [], "output2": []}))
        async with httpx.AsyncClient() as http:
            client = KisClient(
                endpoints=ENDPOINTS, http=http, token_store=MemoryTokenStore(),
                clock=lambda: t[0], sleep=no_wait, now=lambda: NOW + timedelta(minutes=5),
            )
            order = OrderRequest("005930", Side.BUY, 1)
            ack = await client.place_order(creds, account, order)
            texts.append(repr(ack))
            for _ in range(3):
                try:
                    await client.place_order(creds, account, order)
                except KisError as exc:
                    errors.append(exc)
            await client.price(creds, "005930")
            await client.balance(creds, account)
            key = await client.approval_key(creds)
            access = await client.access_token(creds)
            texts += [repr(key), str(key), repr(access), f"{access}", repr(client), str(client),
                      repr(client.tokens), repr(creds), str(creds), repr(account)]
            await client.revoke_token(creds)

    assert [type(e) for e in errors] == [OrderOutcomeUnknown, KisTransportError, KisApiError]
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    assert_clean(caplog.text)
    for text in texts:
        assert_clean(text)
    assert APP_KEY not in repr(creds) and APP_KEY not in caplog.text
    assert "bad ****" in str(errors[2])  # scrubbed, not dropped
    assert caplog.records, "the client logged nothing at DEBUG: the check would be vacuous"


def test_stored_credential_masks_its_value() -> None:
    cred = StoredCredential(Secret(TOKENS[0]), expires_at=NOW, issued_at=NOW)
    assert_clean(repr(cred))
    assert_clean(str(cred))
