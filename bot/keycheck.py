"""The three checks run after keys are saved (SPEC section 5), through the KIS client.

1. Token issuance in the chosen environment. Refused there → the other environment's
   token endpoint is tried before calling the keys invalid ("these keys belong to the
   other environment").
2. A balance inquiry: the account number and product code belong to this app.
3. The WebSocket approval key and the fill-notice subscription with the HTS ID, waited
   for until READY or FAILED, with a bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.checks import CheckItem, CheckReport, CheckStatus
from kis.client import KisClient
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

# Subscribes with the HTS ID and waits (bounded) for READY/FAILED; returns the state then.
FillProbe = Callable[[AppCredentials, str, float], Awaitable[ConnectionState]]
Progress = Callable[[CheckReport], Awaitable[None]]


def _kis_words(exc: KisError) -> str:
    if isinstance(exc, KisApiError):
        if exc.msg1 and exc.msg_cd:
            return f"{exc.msg1} [{exc.msg_cd}]"
        return exc.msg1 or exc.msg_cd or type(exc).__name__
    return type(exc).__name__


def _transient(exc: KisError) -> bool:
    return isinstance(exc, (KisTransportError, KisServerError, KisRateLimited))


class KeyChecker:
    def __init__(self, kis: KisClient, *, fill_timeout: float = 15.0) -> None:
        self._kis = kis
        self.fill_timeout = fill_timeout

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
            if _transient(exc):
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
