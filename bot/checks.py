"""The key checks' checklist message (pure) and the re-check cooldown; the checks
themselves are `kis.keycheck`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final

from bot.formatting import env_label
from bot.texts import Lang, t
from kis.keycheck import CheckItem, CheckReport, CheckStatus

__all__ = [
    "CheckItem", "CheckReport", "CheckStatus", "RecheckCooldown", "render_checklist",
]


def _reason(item: CheckItem) -> str:
    return item.detail or "-"


def render_checklist(
    lang: Lang,
    report: CheckReport,
    *,
    account: str,
    hts_id: str,
    fill_wait_seconds: int,
) -> str:
    env = env_label(lang, report.env.value)
    other = env_label(lang, report.env.other.value)
    lines = [t(lang, "check.title", env=env)]

    token = report.token
    if token.status is CheckStatus.PENDING:
        lines.append(t(lang, "check.pending", name=t(lang, "check.name_token")))
    elif token.ok:
        lines.append(t(lang, "check.token_ok", env=env))
    elif token.status is CheckStatus.OTHER_ENV:
        lines.append(t(lang, "check.token_other_env", env=env, other=other))
    elif token.status is CheckStatus.RATE_LIMITED:
        lines.append(t(lang, "check.token_rate_limited", reason=_reason(token)))
    elif token.status is CheckStatus.TEMPORARY:
        lines.append(t(lang, "check.token_temporary", reason=_reason(token)))
    else:
        lines.append(t(lang, "check.token_invalid", reason=_reason(token), env=env))

    acct = report.account
    if acct.status is CheckStatus.PENDING:
        lines.append(t(lang, "check.pending", name=t(lang, "check.name_account")))
    elif acct.ok:
        lines.append(t(lang, "check.account_ok", account=account))
    elif acct.status is CheckStatus.SKIPPED:
        lines.append(t(lang, "check.skipped", name=t(lang, "check.name_account")))
    elif acct.status is CheckStatus.TEMPORARY:
        lines.append(t(lang, "check.account_temporary", reason=_reason(acct)))
    else:
        lines.append(t(lang, "check.account_bad", account=account, reason=_reason(acct)))

    fill = report.fill
    if fill.status is CheckStatus.PENDING:
        lines.append(t(lang, "check.pending", name=t(lang, "check.name_fill")))
    elif fill.ok:
        lines.append(t(lang, "check.fill_ok", hts_id=hts_id))
    elif fill.status is CheckStatus.SKIPPED:
        lines.append(t(lang, "check.skipped", name=t(lang, "check.name_fill")))
    elif fill.status is CheckStatus.APPROVAL_FAILED:
        lines.append(t(lang, "check.fill_approval", reason=_reason(fill)))
    elif fill.status is CheckStatus.TIMEOUT:
        lines.append(
            t(lang, "check.fill_timeout", hts_id=hts_id, seconds=fill_wait_seconds,
              reason=_reason(fill))
        )
    else:
        lines.append(t(lang, "check.fill_refused", hts_id=hts_id, reason=_reason(fill)))

    if report.done:
        lines.append("")
        lines.append(t(lang, "check.all_ok" if report.ok else "check.some_failed"))
    return "\n".join(lines)


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
