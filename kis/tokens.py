"""Access tokens and WebSocket approval keys, one per (app key, environment).

Every issuance sends the user a KakaoTalk message and KIS allows one a minute per app
key (KIS.md section 3), so: reuse while valid (memory first, then the `TokenStore`,
which survives restarts); refresh only within `refresh_margin` of expiry; concurrent
callers share one in-flight issuance; a second issuance within a minute of the last
one waits for the minute to pass (up to `max_issue_wait`) or raises
`KisTokenIssueTooSoon` — it never loops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from kis._wire import NOT_SENT_ERRORS, JsonObject, json_object, refusal, text
from kis.env import KST, Endpoints, Environment
from kis.errors import (
    KisRateLimited,
    KisServerError,
    KisTokenIssueTooSoon,
    KisTransportError,
)
from kis.models import AppCredentials
from kis.ratelimit import rate_limit_backoff
from kis.secret import Secret
from kis.tokenstore import CredentialKind, StoredCredential, TokenStore

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/tokenP"
APPROVAL_PATH = "/oauth2/Approval"
REVOKE_PATH = "/oauth2/revokeP"
_JSON_HEADERS = {"content-type": "application/json; charset=utf-8"}


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_kst(value: str) -> datetime | None:
    """`"YYYY-MM-DD HH:MM:SS"` in KST (access_token_token_expired) as aware UTC."""
    try:
        naive = datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")  # noqa: DTZ007 - KST added below
    except ValueError:
        return None
    return naive.replace(tzinfo=KST).astimezone(UTC)


@dataclass(slots=True)
class _Slot:
    cred: StoredCredential | None = None
    inflight: asyncio.Task[StoredCredential] | None = None
    last_issue: datetime | None = None  # last issuance (or attempt that may have issued)


class TokenManager:
    def __init__(
        self,
        *,
        endpoints: Endpoints,
        http: httpx.AsyncClient,
        store: TokenStore,
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        refresh_margin: timedelta = timedelta(hours=1),
        min_issue_interval: timedelta = timedelta(seconds=60),
        max_issue_wait: float = 60.0,
        approval_lifetime: timedelta = timedelta(hours=24),
        max_rate_limit_retries: int = 5,
    ) -> None:
        self._endpoints = endpoints
        self._http = http
        self._store = store
        self._now = now
        self._sleep = sleep
        self._margin = refresh_margin
        self._min_interval = min_issue_interval
        self._max_wait = max_issue_wait
        self._approval_lifetime = approval_lifetime
        self._max_rate_retries = max_rate_limit_retries
        self._slots: dict[tuple[CredentialKind, str, Environment], _Slot] = {}

    def __repr__(self) -> str:
        return f"TokenManager(keys={len(self._slots)})"

    # -- public ---------------------------------------------------------------------

    async def access_token(self, creds: AppCredentials) -> Secret:
        return await self._get(CredentialKind.ACCESS_TOKEN, creds)

    async def approval_key(self, creds: AppCredentials) -> Secret:
        return await self._get(CredentialKind.APPROVAL_KEY, creds)

    async def invalidate(self, creds: AppCredentials, token: Secret | None = None) -> None:
        """Forget the access token after KIS rejected it (EGW00121/122/123).

        With `token`, only that value is dropped: a caller holding an old token does
        not throw away the one another caller has just obtained.
        """
        await self._drop(CredentialKind.ACCESS_TOKEN, creds, token)

    async def invalidate_approval_key(
        self, creds: AppCredentials, key: Secret | None = None
    ) -> None:
        await self._drop(CredentialKind.APPROVAL_KEY, creds, key)

    async def revoke(self, creds: AppCredentials) -> None:
        """Revoke the current access token at KIS and forget it; no-op without one."""
        kind = CredentialKind.ACCESS_TOKEN
        slot = self._slot(kind, creds)
        cred = slot.cred or await self._store.load(kind, creds.app_key, creds.env)
        if cred is None:
            return
        body = {
            "appkey": creds.app_key,
            "appsecret": creds.app_secret.reveal(),
            "token": cred.value.reveal(),
        }
        try:
            await self._post(creds, REVOKE_PATH, body, secrets=(cred.value.reveal(),))
        except KisServerError as exc:
            # KIS documents no answer format for revokeP: any 2xx means done.
            if not 200 <= exc.http_status < 300:
                raise
        log.info("kis access token revoked (%s)", creds.env.value)
        await self._drop(kind, creds, None)

    # -- cache ----------------------------------------------------------------------

    def _slot(self, kind: CredentialKind, creds: AppCredentials) -> _Slot:
        return self._slots.setdefault((kind, creds.app_key, creds.env), _Slot())

    def _fresh(self, cred: StoredCredential) -> bool:
        return cred.expires_at - self._margin > self._now()

    def _usable(self, cred: StoredCredential | None) -> bool:
        return cred is not None and cred.expires_at > self._now() + timedelta(seconds=30)

    async def _get(self, kind: CredentialKind, creds: AppCredentials) -> Secret:
        slot = self._slot(kind, creds)
        if slot.cred is not None and self._fresh(slot.cred):
            return slot.cred.value
        task = slot.inflight
        if task is None:
            task = asyncio.create_task(self._obtain(kind, creds, slot))
            slot.inflight = task
            task.add_done_callback(lambda done: self._finished(slot, done))
        # Shielded: a cancelled caller must not cancel the issuance others wait for.
        cred = await asyncio.shield(task)
        return cred.value

    @staticmethod
    def _finished(slot: _Slot, task: asyncio.Task[StoredCredential]) -> None:
        if slot.inflight is task:
            slot.inflight = None
        if not task.cancelled():
            task.exception()  # retrieved: waiters may all have gone away

    async def _drop(
        self, kind: CredentialKind, creds: AppCredentials, value: Secret | None
    ) -> None:
        slot = self._slot(kind, creds)
        if slot.cred is not None:
            if value is not None and slot.cred.value != value:
                return
            slot.last_issue = _latest(slot.last_issue, slot.cred.issued_at)
            slot.cred = None
        stored = await self._store.load(kind, creds.app_key, creds.env)
        if stored is not None and (value is None or stored.value == value):
            slot.last_issue = _latest(slot.last_issue, stored.issued_at)
            await self._store.delete(kind, creds.app_key, creds.env)

    async def _obtain(
        self, kind: CredentialKind, creds: AppCredentials, slot: _Slot
    ) -> StoredCredential:
        current = slot.cred
        if current is None:
            current = await self._store.load(kind, creds.app_key, creds.env)
            if current is not None:
                slot.last_issue = _latest(slot.last_issue, current.issued_at)
                if self._fresh(current):
                    slot.cred = current
                    return current
        wait = self._issue_wait(slot)
        if wait > 0:
            if self._usable(current):
                assert current is not None
                slot.cred = current  # near expiry but still valid: use it, refresh later
                return current
            if wait > self._max_wait:
                raise KisTokenIssueTooSoon(
                    rt_cd="",
                    msg_cd="",
                    msg1=f"{kind.value} was issued less than a minute ago; retry later",
                    tr_id=None,
                    http_status=0,
                    retry_after=wait,
                )
            log.info("kis %s issuance waits %.1fs (one a minute per key)", kind.value, wait)
            await self._sleep(wait)
        try:
            cred = await self._issue(kind, creds, slot)
        except (KisTransportError, KisServerError) as exc:
            if self._usable(current):
                assert current is not None
                log.warning("kis %s refresh failed (%s); keeping the current one",
                            kind.value, type(exc).__name__)
                slot.cred = current
                return current
            raise
        slot.cred = cred
        try:
            await self._store.save(kind, creds.app_key, creds.env, cred)
        except Exception as exc:  # the token still works from memory
            log.warning("kis %s could not be stored: %s", kind.value, type(exc).__name__)
        return cred

    def _issue_wait(self, slot: _Slot) -> float:
        if slot.last_issue is None:
            return 0.0
        return (slot.last_issue + self._min_interval - self._now()).total_seconds()

    # -- issuance -------------------------------------------------------------------

    async def _issue(
        self, kind: CredentialKind, creds: AppCredentials, slot: _Slot
    ) -> StoredCredential:
        secret = creds.app_secret.reveal()
        if kind is CredentialKind.ACCESS_TOKEN:
            path = TOKEN_PATH
            body = {"grant_type": "client_credentials", "appkey": creds.app_key,
                    "appsecret": secret}
        else:
            path = APPROVAL_PATH
            body = {"grant_type": "client_credentials", "appkey": creds.app_key,
                    "secretkey": secret}
        started = self._now()
        try:
            answer = await self._post_retrying_rate_limit(creds, path, body)
        except KisTokenIssueTooSoon:
            slot.last_issue = self._now()
            raise
        except KisTransportError as exc:
            if exc.__cause__ is not None and not isinstance(exc.__cause__, NOT_SENT_ERRORS):
                slot.last_issue = started  # KIS may have issued (and messaged the user)
            raise
        issued_at = self._now()
        slot.last_issue = issued_at
        if kind is CredentialKind.ACCESS_TOKEN:
            cred = _access_credential(answer, issued_at)
        else:
            cred = _approval_credential(answer, issued_at, self._approval_lifetime)
        log.info("kis %s issued (%s), valid until %s", kind.value, creds.env.value,
                 cred.expires_at.isoformat(timespec="seconds"))
        return cred

    async def _post_retrying_rate_limit(
        self, creds: AppCredentials, path: str, body: dict[str, str]
    ) -> JsonObject:
        """EGW00201 refuses the request before anything is issued (no token, no KakaoTalk
        message): back off and ask again, a bounded number of times, as on the order
        endpoint. EGW00133 (too soon) is never retried here."""
        retries = 0
        while True:
            try:
                return await self._post(creds, path, body)
            except KisRateLimited:
                if retries >= self._max_rate_retries:
                    raise
                retries += 1
                log.info("kis %s rate limited; retry %d", path, retries)
                await self._sleep(rate_limit_backoff(retries))

    async def _post(
        self,
        creds: AppCredentials,
        path: str,
        body: dict[str, str],
        *,
        secrets: tuple[str, ...] = (),
    ) -> JsonObject:
        url = self._endpoints.rest_url(creds.env) + path
        started = time.monotonic()
        try:
            response = await self._http.post(url, json=body, headers=_JSON_HEADERS)
        except httpx.TransportError as exc:
            raise KisTransportError(
                f"{type(exc).__name__} calling {path} ({creds.env.value})", tr_id=None
            ) from exc
        answer = json_object(response)
        error = refusal(
            response, answer, tr_id=None, oauth=True,
            secrets=(creds.app_secret.reveal(), *secrets),
        )
        log.debug("kis %s -> %s %s %.3fs", path, response.status_code,
                  error.msg_cd if error else "ok", time.monotonic() - started)
        if error is not None:
            raise error
        assert answer is not None  # refusal() returns an error for a 2xx without JSON
        return answer


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _access_credential(answer: JsonObject, issued_at: datetime) -> StoredCredential:
    token = text(answer, "access_token")
    if not token:
        raise KisServerError(rt_cd="", msg_cd="", msg1="token answer without access_token",
                             tr_id=None, http_status=200)
    expires_at = parse_kst(text(answer, "access_token_token_expired"))
    if expires_at is None:
        seconds = text(answer, "expires_in")
        expires_at = issued_at + timedelta(seconds=int(seconds) if seconds.isdigit() else 86400)
    return StoredCredential(value=Secret(token), expires_at=expires_at, issued_at=issued_at)


def _approval_credential(
    answer: JsonObject, issued_at: datetime, lifetime: timedelta
) -> StoredCredential:
    key = text(answer, "approval_key")
    if not key:
        raise KisServerError(rt_cd="", msg_cd="", msg1="approval answer without approval_key",
                             tr_id=None, http_status=200)
    return StoredCredential(value=Secret(key), expires_at=issued_at + lifetime,
                            issued_at=issued_at)
