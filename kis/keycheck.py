"""The three checks run after keys are saved (SPEC section 5), through the KIS client,
and their results as values. Knows no users and no chat: the bot and the dashboard
render the report each in their own way.

1. Token issuance in the chosen environment. Refused there → the other environment's
   token endpoint is tried before calling the keys invalid ("these keys belong to the
   other environment").
2. A balance inquiry: the account number and product code belong to this app.
3. The WebSocket approval key and the fill-notice subscription with the HTS ID, waited
   for until READY or FAILED, with a bound.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final

from kis.client import KisClient
from kis.env import Environment
from kis.errors import (
    KisApiError,
    KisAuthError,
    KisError,
    KisRateLimited,
    KisServerError,
    KisTokenIssueTooSoon,
    KisTransportError,
)
from kis.models import Account, AppCredentials
from kis.ws import ConnectionState, Status

log = logging.getLogger(__name__)

class CheckStatus(enum.StrEnum):
    PENDING = "pending"
    OK = "ok"
    OTHER_ENV = "other_env"  # token refused here, issued in the other environment
    INVALID = "invalid"  # app key / secret refused
    RATE_LIMITED = "rate_limited"  # token issuance too soon (once a minute)
    TEMPORARY = "temporary"  # KIS unreachable / server trouble / rate limited
    REFUSED = "refused"  # account or HTS ID refused by KIS
    TIMEOUT = "timeout"  # fill-notice subscription not confirmed within the bound
    APPROVAL_FAILED = "approval_failed"  # WebSocket approval key not issued
    SKIPPED = "skipped"  # not run: needs a token


@dataclass(frozen=True, slots=True)
class CheckItem:
    status: CheckStatus = CheckStatus.PENDING
    detail: str = ""  # KIS's own words (msg1 / msg_cd) — never a secret

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.OK


@dataclass(frozen=True, slots=True)
class CheckReport:
    env: Environment
    token: CheckItem = CheckItem()
    account: CheckItem = CheckItem()
    fill: CheckItem = CheckItem()

    @property
    def ok(self) -> bool:
        return self.token.ok and self.account.ok and self.fill.ok

    @property
    def done(self) -> bool:
        return CheckStatus.PENDING not in (
            self.token.status, self.account.status, self.fill.status
        )

    def with_item(self, name: str, item: CheckItem) -> CheckReport:
        if name == "token":
            return replace(self, token=item)
        if name == "account":
            return replace(self, account=item)
        if name == "fill":
            return replace(self, fill=item)
        raise ValueError(f"unknown check {name!r}")

    def to_json(self) -> dict[str, object]:
        return {
            name: {"status": item.status.value, "detail": item.detail}
            for name, item in (
                ("token", self.token), ("account", self.account), ("fill", self.fill)
            )
        }

    @classmethod
    def from_json(cls, env: Environment, data: Mapping[str, object] | None) -> CheckReport:
        def item(name: str) -> CheckItem:
            raw = (data or {}).get(name)
            if not isinstance(raw, Mapping):
                return CheckItem(CheckStatus.SKIPPED)
            try:
                status = CheckStatus(str(raw.get("status", "")))
            except ValueError:
                status = CheckStatus.SKIPPED
            return CheckItem(status, str(raw.get("detail", "")))

        return cls(env=env, token=item("token"), account=item("account"), fill=item("fill"))


# Subscribes with the HTS ID and waits (bounded) for READY/FAILED; returns the state then.
# The account fields KIS's input check names when the account itself is wrong.
ACCOUNT_FIELDS: Final = ("ACNO", "CANO", "ACNT_PRDT_CD")

FillProbe = Callable[[AppCredentials, str, float], Awaitable[ConnectionState]]
Progress = Callable[[CheckReport], Awaitable[None]]
# The live subscription's state when it is READY in that environment, else None.
LiveState = Callable[[Environment], ConnectionState | None]


def live_or_probe(live: LiveState, probe: FillProbe) -> FillProbe:
    """Re-checking stored keys: a subscription already READY on them is the answer
    (restarting it would open a gap in the fill notices); otherwise a fresh probe."""

    async def run(creds: AppCredentials, hts_id: str, timeout: float) -> ConnectionState:  # noqa: ASYNC109
        state = live(creds.env)
        if state is not None and state.status is Status.READY:
            return state
        return await probe(creds, hts_id, timeout)

    return run


def _kis_words(exc: KisError) -> str:
    if isinstance(exc, KisApiError):
        if exc.msg1 and exc.msg_cd:
            return f"{exc.msg1} [{exc.msg_cd}]"
        return exc.msg1 or exc.msg_cd or type(exc).__name__
    return type(exc).__name__


def _transient(exc: KisError) -> bool:
    return isinstance(exc, (KisTransportError, KisServerError, KisRateLimited))


def account_refused(exc: KisError) -> bool:
    """KIS's input check refused the account fields: the account is wrong, not KIS.

    A wrong account number comes back as `OPSQ2000` (an `OPSQ` code, otherwise a
    transient gateway error) with msg1 `ERROR : INPUT INVALID_CHECK_ACNO`; the same
    input check names the other account fields (`CANO`, `ACNT_PRDT_CD`).
    """
    if not isinstance(exc, KisApiError):
        return False
    words = exc.msg1.upper()
    return any(f"INVALID_CHECK_{field}" in words for field in ACCOUNT_FIELDS)


class KeyChecker:
    def __init__(self, kis: KisClient, *, fill_timeout: float = 15.0) -> None:
        self._kis = kis
        self.fill_timeout = fill_timeout

    @property
    def kis(self) -> KisClient:
        """The client the checks call KIS with."""
        return self._kis

    async def check(
        self,
        creds: AppCredentials,
        account: Account,
        hts_id: str,
        *,
        probe: FillProbe,
        progress: Progress | None = None,
    ) -> CheckReport:
        report = CheckReport(env=creds.env)

        async def update(name: str, item: CheckItem) -> None:
            nonlocal report
            report = report.with_item(name, item)
            if progress is not None:
                try:
                    await progress(report)
                except Exception:  # a failed edit must not abort the checks
                    log.warning("key check progress update failed", exc_info=True)

        token = await self._token(creds)
        await update("token", token)
        if not token.ok:
            await update("account", CheckItem(CheckStatus.SKIPPED))
            await update("fill", CheckItem(CheckStatus.SKIPPED))
            return report

        async def account_check() -> None:
            await update("account", await self._account(creds, account))

        async def fill_check() -> None:
            await update("fill", await self._fill(creds, hts_id, probe))

        await asyncio.gather(account_check(), fill_check())
        return report

    async def _token(self, creds: AppCredentials) -> CheckItem:
        try:
            await self._kis.access_token(creds)
        except KisTokenIssueTooSoon as exc:
            return CheckItem(CheckStatus.RATE_LIMITED, _kis_words(exc))
        except KisAuthError as exc:
            return await self._diagnose_other_env(creds, exc)
        except KisError as exc:
            if _transient(exc):
                return CheckItem(CheckStatus.TEMPORARY, _kis_words(exc))
            return CheckItem(CheckStatus.INVALID, _kis_words(exc))
        return CheckItem(CheckStatus.OK)

    async def _diagnose_other_env(
        self, creds: AppCredentials, refusal: KisAuthError
    ) -> CheckItem:
        other = AppCredentials(app_key=creds.app_key, app_secret=creds.app_secret,
                               env=creds.env.other)
        try:
            await self._kis.access_token(other)
        except KisError:
            return CheckItem(CheckStatus.INVALID, _kis_words(refusal))
        return CheckItem(CheckStatus.OTHER_ENV, _kis_words(refusal))

    async def _account(self, creds: AppCredentials, account: Account) -> CheckItem:
        try:
            await self._kis.balance(creds, account)
        except KisError as exc:
            if _transient(exc) and not account_refused(exc):
                return CheckItem(CheckStatus.TEMPORARY, _kis_words(exc))
            return CheckItem(CheckStatus.REFUSED, _kis_words(exc))
        return CheckItem(CheckStatus.OK)

    async def _fill(self, creds: AppCredentials, hts_id: str, probe: FillProbe) -> CheckItem:
        try:
            await self._kis.approval_key(creds)
        except KisError as exc:
            return CheckItem(CheckStatus.APPROVAL_FAILED, _kis_words(exc))
        state = await probe(creds, hts_id, self.fill_timeout)
        if state.status is Status.READY:
            return CheckItem(CheckStatus.OK)
        reason = state.reason or ""
        if state.status is Status.FAILED:
            return CheckItem(CheckStatus.REFUSED, _strip_prefix(reason))
        return CheckItem(CheckStatus.TIMEOUT, _strip_prefix(reason) or "-")


def _strip_prefix(reason: str) -> str:
    # kis.ws prefixes its verdicts with "fill notice not ready: "; the checklist says it.
    prefix = "fill notice not ready: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason
