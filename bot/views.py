"""Pure builders of the longer bot messages (webhook, status, orders, log)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from aiogram.types import LinkPreviewOptions
from aiogram.utils.formatting import Pre, Text

from bot.checks import CheckReport, CheckStatus
from bot.formatting import (
    INDICATOR_ALERT,
    STRATEGY_ALERT,
    US_ALERT,
    alert_template,
    env_label,
    kst_clock,
    kst_time,
    money,
    render_reason,
    side_label,
    stock,
    won,
)
from bot.reachability import tradingview_problems
from bot.texts import CATALOGS, Lang, t
from kis.env import KST
from kis.ws import ConnectionState, Status
from storage.records import AccountRecord, AlertRecord, KeySetRecord, OrderRecord, UserRecord

NO_PREVIEW: Final = LinkPreviewOptions(is_disabled=True)


def webhook_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/hook/{token}"


def reachability_warning(lang: Lang, url: str) -> str | None:
    """Why TradingView cannot post to `url`, in `lang`; None when it can."""
    problems = tradingview_problems(url)
    if not problems:
        return None
    listed = ", ".join(t(lang, f"webhook.problem_{p.value}") for p in problems)
    return t(lang, "webhook.unreachable", problems=listed)


def webhook_message(lang: Lang, url: str) -> Text:
    """The URL (with a warning under it when TradingView cannot reach it) and the two
    ready-to-paste alert messages, each in its own code block."""
    warning = reachability_warning(lang, url)
    return Text(
        t(lang, "webhook.url", url=url), "\n\n",
        *((warning, "\n\n") if warning else ()),
        t(lang, "webhook.strategy_title"), "\n",
        Pre(alert_template(STRATEGY_ALERT), language="json"), "\n",
        t(lang, "webhook.indicator_title"), "\n",
        Pre(alert_template(INDICATOR_ALERT), language="json"), "\n",
        t(lang, "webhook.us_title"), "\n",
        Pre(alert_template(US_ALERT), language="json"), "\n",
        t(lang, "webhook.notes"),
    )


def keys_state(lang: Lang, keys: KeySetRecord | None) -> str:
    if keys is None:
        return t(lang, "mode.keys_none")
    return t(lang, "mode.keys_validated" if keys.validated else "mode.keys_failed")


def status_keys_state(lang: Lang, keys: KeySetRecord | None) -> str:
    # /status carries the Re-check button: no pointer back to /status here.
    if keys is not None and not keys.validated:
        return t(lang, "status.keys_failed")
    return keys_state(lang, keys)


def mode_message(lang: Lang, user: UserRecord, key_sets: Sequence[KeySetRecord]) -> str:
    by_env = {k.environment.value: k for k in key_sets}
    return t(
        lang, "mode.show",
        env=env_label(lang, user.active_environment.value),
        paper=keys_state(lang, by_env.get("paper")),
        real=keys_state(lang, by_env.get("real")),
    )


def _mark(lang: Lang, status: CheckStatus) -> str:
    if status is CheckStatus.OK:
        return t(lang, "mark.ok")
    if status is CheckStatus.PENDING:
        return t(lang, "mark.none")
    return t(lang, "mark.bad")


def fill_state_text(lang: Lang, state: ConnectionState | None) -> str:
    if state is None or state.status is Status.STOPPED:
        return t(lang, "status.fill_stopped")
    if state.status is Status.READY:
        return t(lang, "status.fill_ready")
    if state.status is Status.FAILED:
        return t(lang, "status.fill_failed", reason=state.reason or "-")
    return t(lang, "status.fill_connecting")


def status_message(
    lang: Lang,
    user: UserRecord,
    keys: KeySetRecord | None,
    fill_state: ConnectionState | None,
    orders_today: int,
    public_url: str = "",
) -> str:
    lines = [
        t(lang, "status.title"),
        *_account_status(lang, user.active_environment.value, keys, fill_state),
    ]
    return "\n".join(_status_tail(lang, lines, user, orders_today, public_url))


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """One account as `/status` shows it for a user with several."""

    account: AccountRecord
    keys: KeySetRecord | None  # of its active environment
    fill_state: ConnectionState | None


def accounts_status_message(
    lang: Lang, user: UserRecord, accounts: Sequence[AccountStatus], orders_today: int,
    public_url: str = "",
) -> str:
    """`/status` of a user with several accounts: each account's environment, keys,
    checks and fill-notice connection, then what is the user's (pause, today)."""
    lines = [t(lang, "status.title")]
    for item in accounts:
        lines.append(t(lang, "status.account", name=item.account.name,
                       star=" ⭐" if item.account.is_default else ""))
        lines += _account_status(
            lang, item.account.active_environment.value, item.keys, item.fill_state
        )
    return "\n".join(_status_tail(lang, lines, user, orders_today, public_url))


def _account_status(
    lang: Lang, env: str, keys: KeySetRecord | None, fill_state: ConnectionState | None
) -> list[str]:
    lines = [
        t(lang, "status.env", env=env_label(lang, env)),
        t(lang, "status.keys", state=status_keys_state(lang, keys)),
    ]
    if keys is not None and keys.check_results is not None:
        report = CheckReport.from_json(keys.environment, keys.check_results)
        lines.append(
            t(lang, "status.checks", token=_mark(lang, report.token.status),
              account=_mark(lang, report.account.status), fill=_mark(lang, report.fill.status))
        )
        if keys.checked_at is not None:
            lines.append(t(lang, "status.checked_at", time=kst_time(keys.checked_at)))
    lines.append(t(lang, "status.fill", state=fill_state_text(lang, fill_state)))
    return lines


def _status_tail(
    lang: Lang, lines: list[str], user: UserRecord, orders_today: int, public_url: str
) -> list[str]:
    lines.append(t(lang, "status.paused_yes" if user.paused else "status.paused_no"))
    lines.append(t(lang, "status.today", count=orders_today))
    warning = reachability_warning(lang, public_url) if public_url else None
    if warning:
        lines.append(warning)
    return lines


def account_names(accounts: Sequence[AccountRecord]) -> dict[int, str]:
    """Account id → name, for lists that name the account: empty for a user with one
    (a single-account chat reads as before accounts existed)."""
    if len(accounts) < 2:
        return {}
    return {a.id: a.name for a in accounts}


def _prefix(lang: Lang, names: Mapping[int, str], account_id: int | None) -> str:
    name = names.get(account_id) if account_id is not None else None
    return t(lang, "account.prefix", account=name) if name else ""


def _status_label(lang: Lang, prefix: str, status: str) -> str:
    key = f"{prefix}.{status}"
    return t(lang, key) if key in CATALOGS[lang] else status


def _with_reason(
    lang: Lang, label: str, key: str | None, params: Mapping[str, object] | None,
    text: str | None, limit: int,
) -> str:
    if not key and not text:
        return label
    return f"{label}: {render_reason(lang, key, params, text)[:limit]}"


def orders_message(
    lang: Lang, orders: Sequence[OrderRecord], marks: Mapping[int, str] | None = None,
    names: Mapping[int, str] | None = None,
) -> str:
    """`marks`: a prefix per order id (open and partly filled orders are marked);
    `names`: account names to show (`account_names`)."""
    if not orders:
        return t(lang, "orders.empty")
    lines = [t(lang, "orders.title", count=len(orders))]
    for order in orders:
        outcome = _status_label(lang, "order_status", order.status.value)
        if order.status.value in ("rejected", "failed", "unknown"):
            outcome = _with_reason(
                lang, outcome, order.reason_key, order.reason_params, order.reason, 160
            )
        mark = (marks or {}).get(order.id, "") + _prefix(lang, names or {}, order.account_id)
        lines.append(
            mark + t(lang, "orders.line", time=kst_clock(order.created_at),
              side=side_label(lang, order.side),
              stock=stock(order.symbol, order.name or "", order.exchange),
              quantity=won(order.quantity), outcome=outcome)
        )
        average = order.avg_fill_price
        if average is not None:
            lines.append(
                t(lang, "orders.fills", filled=won(order.filled_qty),
                  quantity=won(order.quantity),
                  price=money(lang, _average(average, order.currency), order.currency))
            )
    return "\n".join(lines)


def _average(price: Decimal, currency: str) -> Decimal:
    return price.quantize(Decimal("0.0001") if currency == "USD" else Decimal(1))


def alert_summary(lang: Lang, alert: AlertRecord) -> str:
    """`매수 005930 3주` from the parsed alert in `lang`, or a clipped raw body."""
    parsed = alert.parsed or {}
    parts = [side_label(lang, str(parsed["action"]).lower())] if parsed.get("action") else []
    parts += [str(parsed[k]) for k in ("ticker", "symbol") if parsed.get(k)]
    sizing = parsed.get("sizing")
    if isinstance(sizing, dict):  # as the intake stores it: {"mode": …, "value": …}
        parts.append(_sizing(lang, str(sizing.get("mode")), str(sizing.get("value"))))
    for field in ("quantity", "amount", "position"):
        value = parsed.get(field)
        if value is not None:
            parts.append(_sizing(lang, field, str(value)))
    if parts:
        return " ".join(parts)
    raw = " ".join(alert.raw_body.split())
    return raw[:60] + ("…" if len(raw) > 60 else "")


def _sizing(lang: Lang, mode: str, value: str) -> str:
    if mode == "all" or value == "all":
        return t(lang, "log.sell_all")
    if mode == "percent":
        return f"{value}%"
    if value.endswith("%"):
        return value
    number = _number(value)
    if mode == "amount":
        return t(lang, "unit.won", amount=number)
    return t(lang, "log.position" if mode == "position" else "unit.shares", quantity=number)


def _number(value: str) -> str:
    try:
        amount = Decimal(value)
    except ArithmeticError:
        return value
    if not amount.is_finite():
        return value
    return won(int(amount)) if amount == amount.to_integral_value() else f"{amount:,}"


# Reasons whose wording replaces the alert's status word (one wording for a KIS refusal).
_REASON_LABELS: Final = {"kis_rejected": "order_status.rejected"}


def log_message(
    lang: Lang, alerts: Sequence[AlertRecord], names: Mapping[int, str] | None = None
) -> str:
    """`names`: account names to show (`account_names`); an alert for an account the
    user does not have names the account it asked for."""
    if not alerts:
        return t(lang, "log.empty")
    lines = [t(lang, "log.title", count=len(alerts))]
    for alert in alerts:
        label_key = _REASON_LABELS.get(alert.reason_key or "")
        label = (
            t(lang, label_key) if label_key
            else _status_label(lang, "alert_status", alert.status.value)
        )
        outcome = _with_reason(
            lang, label, alert.reason_key, alert.reason_params, alert.reason, 200
        )
        prefix = _prefix(lang, names or {}, alert.account_id)
        asked = (alert.parsed or {}).get("account")
        if not prefix and alert.account_id is None and names and isinstance(asked, str):
            prefix = t(lang, "account.prefix", account=asked)
        lines.append(
            prefix + t(lang, "log.line", time=kst_clock(alert.received_at),
                       summary=alert_summary(lang, alert), outcome=outcome)
        )
    return "\n".join(lines)


def kst_midnight(now: datetime) -> datetime:
    local = now.astimezone(KST)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)
