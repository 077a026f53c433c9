"""TokenManager: issue rarely, share, persist, refresh near expiry, never loop."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from kis.env import KST, Endpoints, Environment
from kis.errors import (
    KisAuthError,
    KisTokenIssueTooSoon,
    KisTransportError,
)
from kis.models import AppCredentials
from kis.secret import Secret
from kis.tokens import TokenManager, parse_kst
from kis.tokenstore import CredentialKind, MemoryTokenStore, StoredCredential

REAL = "https://real.kis.test:9443"
PAPER = "https://paper.kis.test:29443"
ENDPOINTS = Endpoints(rest={Environment.REAL: REAL, Environment.PAPER: PAPER}, ws={})
APP_KEY = "PSappkey0123456789abcdefghijklmnopqr"
APP_SECRET = "appSECRET" + "q" * 171
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return START + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


def creds(env: Environment = Environment.REAL) -> AppCredentials:
    return AppCredentials(APP_KEY, Secret(APP_SECRET), env)


def kst(moment: datetime) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def token_answer(token: str, expires: datetime) -> httpx.Response:
    # expires_in deliberately disagrees: the KST timestamp wins.
    return httpx.Response(200, json={"access_token": token, "token_type": "Bearer",
                                     "expires_in": 60, "access_token_token_expired": kst(expires)})


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def store() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def manager(
    http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime,
    max_issue_wait: float = 60.0,
) -> TokenManager:
    return TokenManager(endpoints=ENDPOINTS, http=http, store=store, now=clock.now,
                        sleep=clock.sleep, max_issue_wait=max_issue_wait)


def test_parse_kst_is_utc() -> None:
    assert parse_kst("2026-03-03 09:00:00") == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    assert parse_kst("garbage") is None


@pytest.mark.parametrize(("env", "base"), [(Environment.REAL, REAL), (Environment.PAPER, PAPER)])
async def test_issue_request_expiry_and_store(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore,
    clock: FakeTime, env: Environment, base: str,
) -> None:
    expires = START + timedelta(hours=24)
    route = router.post(base + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-one-123456", expires))
    tokens = manager(http, store, clock)
    assert (await tokens.access_token(creds(env))).reveal() == "tok-one-123456"
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(request.content) == {
        "grant_type": "client_credentials", "appkey": APP_KEY, "appsecret": APP_SECRET}
    saved = await store.load(CredentialKind.ACCESS_TOKEN, APP_KEY, env)
    assert saved is not None
    assert saved.expires_at == expires  # from access_token_token_expired, not expires_in
    assert saved.issued_at == START


async def test_fifty_concurrent_callers_one_issuance(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-shared-1234", START + timedelta(days=1)))
    tokens = manager(http, store, clock)
    got = await asyncio.wait_for(
        asyncio.gather(*(tokens.access_token(creds()) for _ in range(50))), 5)
    assert {t.reveal() for t in got} == {"tok-shared-1234"}
    assert route.call_count == 1
    await tokens.access_token(creds())
    assert route.call_count == 1


async def test_concurrent_callers_share_a_failed_issuance(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(return_value=httpx.Response(
        403, json={"error_code": "EGW00103", "error_description": "유효하지 않은 AppKey입니다."}))
    tokens = manager(http, store, clock)
    results = await asyncio.gather(*(tokens.access_token(creds()) for _ in range(10)),
                                   return_exceptions=True)
    assert route.call_count == 1
    assert all(isinstance(r, KisAuthError) for r in results)
    error = results[0]
    assert isinstance(error, KisAuthError)
    assert (error.msg_cd, error.http_status) == ("EGW00103", 403)
    assert error.msg1 == "유효하지 않은 AppKey입니다."


async def test_token_survives_a_restart(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-persist-123", START + timedelta(days=1)))
    await manager(http, store, clock).access_token(creds())
    clock.t += 3600
    restarted = manager(http, store, clock)  # new process, same store
    assert (await restarted.access_token(creds())).reveal() == "tok-persist-123"
    assert route.call_count == 1


async def test_refresh_near_expiry(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    old = StoredCredential(Secret("tok-old-12345"), expires_at=START + timedelta(minutes=30),
                           issued_at=START - timedelta(hours=23, minutes=30))
    await store.save(CredentialKind.ACCESS_TOKEN, APP_KEY, Environment.REAL, old)
    route = router.post(REAL + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-new-12345", START + timedelta(days=1)))
    tokens = manager(http, store, clock)
    assert (await tokens.access_token(creds())).reveal() == "tok-new-12345"
    assert route.call_count == 1
    saved = await store.load(CredentialKind.ACCESS_TOKEN, APP_KEY, Environment.REAL)
    assert saved is not None and saved.value == Secret("tok-new-12345")
    assert clock.sleeps == []  # the old issuance was hours ago: no wait


async def test_failed_refresh_keeps_the_still_valid_token(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    old = StoredCredential(Secret("tok-old-12345"), expires_at=START + timedelta(minutes=30),
                           issued_at=START - timedelta(hours=23))
    await store.save(CredentialKind.ACCESS_TOKEN, APP_KEY, Environment.REAL, old)
    router.post(REAL + "/oauth2/tokenP").mock(side_effect=httpx.ConnectError("down"))
    tokens = manager(http, store, clock)
    assert (await tokens.access_token(creds())).reveal() == "tok-old-12345"


async def test_forced_reissue_within_a_minute_waits_then_issues(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(side_effect=[
        token_answer("tok-first-1234", START + timedelta(days=1)),
        token_answer("tok-second-123", START + timedelta(days=1)),
    ])
    tokens = manager(http, store, clock)
    first = await tokens.access_token(creds())
    clock.t += 10
    await tokens.invalidate(creds(), first)
    assert (await tokens.access_token(creds())).reveal() == "tok-second-123"
    assert route.call_count == 2
    assert clock.sleeps == [pytest.approx(50.0)]


async def test_forced_reissue_within_a_minute_can_refuse_instead(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-first-1234", START + timedelta(days=1)))
    tokens = manager(http, store, clock, max_issue_wait=0.0)
    first = await tokens.access_token(creds())
    clock.t += 15
    await tokens.invalidate(creds(), first)
    with pytest.raises(KisTokenIssueTooSoon) as caught:
        await tokens.access_token(creds())
    assert caught.value.retry_after == pytest.approx(45.0)
    assert route.call_count == 1


async def test_too_soon_answer_from_kis_is_not_retried(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(return_value=httpx.Response(
        403, json={"error_code": "EGW00133",
                   "error_description": "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)"}))
    tokens = manager(http, store, clock, max_issue_wait=0.0)
    with pytest.raises(KisTokenIssueTooSoon) as caught:
        await tokens.access_token(creds())
    assert caught.value.msg_cd == "EGW00133"
    with pytest.raises(KisTokenIssueTooSoon):
        await tokens.access_token(creds())  # our own guard: no second POST
    assert route.call_count == 1


async def test_invalidate_with_a_stale_token_keeps_the_new_one(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    route = router.post(REAL + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-current-12", START + timedelta(days=1)))
    tokens = manager(http, store, clock)
    await tokens.access_token(creds())
    await tokens.invalidate(creds(), Secret("tok-stale-1234"))
    assert (await tokens.access_token(creds())).reveal() == "tok-current-12"
    assert route.call_count == 1


async def test_transport_error_on_issue_is_a_transport_error(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    router.post(REAL + "/oauth2/tokenP").mock(side_effect=httpx.ConnectError("down"))
    with pytest.raises(KisTransportError):
        await manager(http, store, clock).access_token(creds())


@pytest.mark.parametrize(("env", "base"), [(Environment.REAL, REAL), (Environment.PAPER, PAPER)])
async def test_approval_key_uses_secretkey_and_is_cached(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore,
    clock: FakeTime, env: Environment, base: str,
) -> None:
    route = router.post(base + "/oauth2/Approval").mock(
        return_value=httpx.Response(200, json={"approval_key": "approval-abc-123456"}))
    tokens = manager(http, store, clock)
    keys = await asyncio.gather(*(tokens.approval_key(creds(env)) for _ in range(5)))
    assert {k.reveal() for k in keys} == {"approval-abc-123456"}
    assert route.call_count == 1
    assert json.loads(route.calls.last.request.content) == {
        "grant_type": "client_credentials", "appkey": APP_KEY, "secretkey": APP_SECRET}
    saved = await store.load(CredentialKind.APPROVAL_KEY, APP_KEY, env)
    assert saved is not None and saved.expires_at == START + timedelta(hours=24)
    clock.t += 3600 * 22
    await manager(http, store, clock).approval_key(creds(env))  # restart, still fresh
    assert route.call_count == 1
    clock.t += 3600 * 1.5  # within the margin of its day: refreshed
    await tokens.approval_key(creds(env))
    assert route.call_count == 2


async def test_revoke_posts_token_and_forgets_it(
    router: respx.MockRouter, http: httpx.AsyncClient, store: MemoryTokenStore, clock: FakeTime
) -> None:
    issue = router.post(REAL + "/oauth2/tokenP").mock(
        return_value=token_answer("tok-revoke-123", START + timedelta(days=1)))
    revoke = router.post(REAL + "/oauth2/revokeP").mock(
        return_value=httpx.Response(200, json={"code": 200, "message": "접근토큰 폐기에 성공"}))
    tokens = manager(http, store, clock)
    await tokens.access_token(creds())
    await tokens.revoke(creds())
    assert json.loads(revoke.calls.last.request.content) == {
        "appkey": APP_KEY, "appsecret": APP_SECRET, "token": "tok-revoke-123"}
    assert await store.load(CredentialKind.ACCESS_TOKEN, APP_KEY, Environment.REAL) is None
    clock.t += 120
    await tokens.access_token(creds())
    assert issue.call_count == 2
    await manager(http, MemoryTokenStore(), clock).revoke(creds())  # nothing to revoke
    assert revoke.call_count == 1
