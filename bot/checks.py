"""The three key checks of SPEC section 5 as values, and the checklist message (pure)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bot.formatting import env_label
from bot.texts import Lang, t
from kis.env import Environment


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
