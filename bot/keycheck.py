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
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final

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
# The account fields KIS's input check names when the account itself is wrong.
ACCOUNT_FIELDS: Final = ("ACNO", "CANO", "ACNT_PRDT_CD")

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


# KIS issues an access token once a minute per app key: re-checks are paced to match.
RECHECK_INTERVAL_S: Final = 60.0


class RecheckCooldown:
    """At most one re-check per user every `interval` seconds.

    `try_start` records the attempt when it is allowed, so two presses racing each
    other start one check only.
    """

    def __init__(
        self, interval: float = RECHECK_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[int, float] = {}

    def __repr__(self) -> str:
        return f"RecheckCooldown(interval={self.interval:g}, users={len(self._last)})"

    def try_start(self, user_id: int) -> int:
        """0 when a re-check may start now (and is recorded), else whole seconds to wait."""
        now = self._clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.interval:
            return max(1, math.ceil(self.interval - (now - last)))
        self._forget_expired(now)
        self._last[user_id] = now
        return 0

    def _forget_expired(self, now: float) -> None:
        # Keeps the map as small as the set of users who re-checked within the interval.
        expired = [uid for uid, at in self._last.items() if now - at >= self.interval]
        for uid in expired:
            del self._last[uid]
