"""Pure formatting: numbers, times, stocks and notices as the user reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from bot.texts import CATALOGS, Lang, t
from kis.env import KST
from kis.ws import NOT_READY
from storage.notices import CHECKED_WITH_KIS, FROM_EXECUTIONS, Notice, NoticeKind

# Korea has had no daylight saving time since 1988: a fixed offset needs no tz database.

STRATEGY_ALERT: Final = {
    "ticker": "{{ticker}}",
    "action": "{{strategy.order.action}}",
    "quantity": "{{strategy.order.contracts}}",
    "id": "{{strategy.order.id}}-{{timenow}}",
    "time": "{{timenow}}",
    "max_lag": "60",
}
INDICATOR_ALERT: Final = {
    "ticker": "{{ticker}}",
    "action": "buy",
    "quantity": "1",
    "time": "{{timenow}}",
    "max_lag": "60",
    "comment": "{{interval}} {{close}}",
}


def alert_template(fields: dict[str, str]) -> str:
    """One line of JSON with every placeholder quoted, ready to paste."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


US_ALERT: Final = {
    "ticker": "{{exchange}}:{{ticker}}",
    "action": "{{strategy.order.action}}",
    "quantity": "{{strategy.order.contracts}}",
    "id": "{{strategy.order.id}}-{{timenow}}",
    "time": "{{timenow}}",
    "max_lag": "60",
}
# KIS's order exchange codes as TradingView names them.
EXCHANGE_NAMES: Final = {"NASD": "NASDAQ", "NYSE": "NYSE", "AMEX": "AMEX"}


def won(amount: int | Decimal) -> str:
    """`1,234,500`: thousands separators (a count, or a whole amount)."""
    if amount == int(amount):
        return f"{int(amount):,}"
    return f"{amount:,.2f}"


def money(lang: Lang, amount: int | Decimal, currency: str = "KRW") -> str:
    """`71,000원` / `71,000 KRW`, `$190.12`, `$0.5123` (sub-penny prices keep 4 places)."""
    if currency == "USD":
        value = Decimal(amount)
        places = 2 if value == value.quantize(Decimal("0.01")) else 4
        return f"${value:,.{places}f}"
    return t(lang, "unit.won", amount=won(amount))


def kst_time(moment: datetime) -> str:
    """`2026-05-11 09:01:02 KST` for an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")


def kst_clock(moment: datetime) -> str:
    """`05-11 09:01` — the short form used in lists."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(KST).strftime("%m-%d %H:%M")


def kis_time_today(hhmmss: str, now: datetime) -> datetime:
    """KIS's `HHMMSS` (KST) on the KST date of `now`, as an aware datetime."""
    local = now.astimezone(KST)
    try:
        hour, minute, second = int(hhmmss[0:2]), int(hhmmss[2:4]), int(hhmmss[4:6])
        return local.replace(hour=hour, minute=minute, second=second, microsecond=0)
    except (ValueError, IndexError):
        return local


def stock(symbol: str, name: str = "", exchange: str = "") -> str:
    """`삼성전자 (005930)`, `APPLE INC (NASDAQ:AAPL)`, or the code alone without a name."""
    if symbol and exchange and exchange != "KRX":
        symbol = f"{EXCHANGE_NAMES.get(exchange, exchange)}:{symbol}"
    if name and symbol:
        return f"{name} ({symbol})"
    return name or symbol


def env_label(lang: Lang, env: str) -> str:
    return t(lang, "env.real") if env == "real" else t(lang, "env.paper")


def side_label(lang: Lang, side: str) -> str:
    if side == "buy":
        return t(lang, "side.buy")
    if side == "sell":
        return t(lang, "side.sell")
    return side


def reason_text(lang: Lang, notice: Notice) -> str:
    """A notice's reason in `lang` (see `render_reason`)."""
    return render_reason(
        lang, notice.reason_key, notice.reason_params, notice.reason, notice.currency
    )


def render_reason(
    lang: Lang,
    key: str | None,
    params: Mapping[str, object] | None,
    text: str | None,
    currency: str = "",
) -> str:
    """The localized reason when the catalogs know `key`, else the literal `text`.

    Never raises and never shows a bare key: an unknown key, or params missing a
    placeholder, falls back to `text` (rows stored before reasons had keys have only
    that), or to a generic "no reason given".
    """
    if key and f"reason.{key}" in CATALOGS[lang]:
        values = {name: _param(value) for name, value in (params or {}).items()}
        # Money figures read in the market's currency and the user's language (reasons
        # stored before markets existed carry no currency: the caller's is used).
        money_in = str((params or {}).get("currency") or currency)
        if money_in:
            for name in ("amount", "price", "limit", "bought"):
                if name in values:
                    values[name] = _money_param(lang, values[name], money_in)
        try:
            return t(lang, f"reason.{key}", **values)
        except (KeyError, IndexError, ValueError):
            pass  # params missing a placeholder still get a readable reason below
    return text or t(lang, "reason.unknown")


def _money_param(lang: Lang, text: str, currency: str) -> str:
    try:
        return money(lang, Decimal(text.replace(",", "")), currency)
    except ArithmeticError:
        return text


def _param(value: object) -> str:
    text = str(value).strip()
    # kis.ws prefixes its verdicts with "fill notice not ready: "; the text says it already.
    prefix = f"{NOT_READY}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    return text or "-"


def _subject(lang: Lang, notice: Notice) -> str:
    """`삼성전자 (005930) 매수 3주`, leaving out what the notice does not know."""
    subject = stock(notice.symbol, notice.name, notice.exchange)
    parts = [p for p in (subject, side_label(lang, notice.side)) if p]
    if notice.quantity:
        parts.append(t(lang, "unit.shares", quantity=won(notice.quantity)))
    return " ".join(parts) or "-"


def env_and_account(lang: Lang, env: str, account: str) -> str:
    """`모의투자` or, for a user with several accounts, `모의투자 · isa`."""
    label = env_label(lang, env)
    return f"{label} · {account}" if account else label


def format_notice(notice: Notice, lang: Lang) -> str:
    """The chat message for one notice: short, stock name + code, KRW separators, KST;
    the account named when the user has several."""
    env = env_and_account(lang, notice.env, notice.account)
    name = stock(notice.symbol, notice.name, notice.exchange)
    currency = notice.currency
    side = side_label(lang, notice.side)
    time = kst_time(notice.at)
    kind = notice.kind
    text: str
    if kind is NoticeKind.ORDER_ACCEPTED:
        if notice.marketable and notice.price:
            price = t(lang, "notice.price_marketable", price=money(lang, notice.price, currency))
        elif notice.order_type in ("limit", "loo", "loc") and notice.price:
            price = t(lang, "notice.price_limit", price=money(lang, notice.price, currency))
            if notice.order_type != "limit":
                price += f" ({notice.order_type.upper()})"
        elif notice.order_type in ("moo", "moc"):
            price = notice.order_type.upper()
        else:
            price = t(lang, "notice.price_market")
        text = t(
            lang, "notice.accepted", env=env, stock=name, side=side,
            quantity=won(notice.quantity), price=price, time=time,
        )
        if notice.reason_key == CHECKED_WITH_KIS:
            text += "\n" + t(lang, "notice.checked", order_no=notice.order_no or "-",
                              filled=won(notice.filled), ordered=won(notice.ordered))
    elif kind is NoticeKind.ORDER_UNKNOWN:
        text = t(lang, "notice.unknown", env=env, subject=_subject(lang, notice), time=time)
    elif kind is NoticeKind.ORDER_NOT_PLACED:
        text = t(
            lang, "notice.not_placed", env=env, subject=_subject(lang, notice),
            reason=reason_text(lang, notice), time=time,
        )
    elif kind is NoticeKind.ORDER_REFUSED:
        text = t(
            lang, "notice.refused", env=env, subject=_subject(lang, notice),
            reason=reason_text(lang, notice), time=time,
        )
    elif kind is NoticeKind.ORDER_FAILED:
        # A failed inquiry comes before any size is known: no "0 shares" then.
        text = t(
            lang, "notice.failed", env=env, subject=_subject(lang, notice),
            reason=reason_text(lang, notice), time=time,
        )
    elif kind is NoticeKind.ORDER_FILLED:
        text = t(
            lang, "notice.filled", env=env, stock=name, side=side,
            quantity=won(notice.quantity), price=money(lang, notice.price or 0, currency),
            time=time,
        )
    elif kind is NoticeKind.ORDER_PARTIAL:
        text = t(
            lang, "notice.partial", env=env, stock=name, side=side,
            quantity=won(notice.quantity), price=money(lang, notice.price or 0, currency),
            filled=won(notice.filled), ordered=won(notice.ordered), time=time,
        )
    elif kind is NoticeKind.ORDER_REJECTED:
        text = t(
            lang, "notice.rejected", env=env, stock=name, side=side,
            quantity=won(notice.quantity), reason=reason_text(lang, notice), time=time,
        )
    elif kind is NoticeKind.FILL_NOTICE_DOWN:
        text = t(lang, "notice.fill_down", reason=reason_text(lang, notice))
        if notice.account:
            text = f"[{notice.account}] {text}"
    else:
        text = t(lang, "notice.fill_up")
        if notice.account:
            text = f"[{notice.account}] {text}"
    if kind in (NoticeKind.ORDER_FILLED, NoticeKind.ORDER_PARTIAL) and (
        notice.reason_key == FROM_EXECUTIONS
    ):
        text += "\n" + t(lang, "notice.from_executions")
    if notice.ignored_price and kind in (NoticeKind.ORDER_ACCEPTED, NoticeKind.ORDER_REFUSED,
                                         NoticeKind.ORDER_FAILED):
        text += "\n" + t(lang, "notice.price_ignored", price=notice.ignored_price)
    if notice.comment:
        text += "\n" + t(lang, "notice.comment", comment=notice.comment[:200])
    return text


def format_dry_run(notice: Notice, lang: Lang) -> str:
    """`/test`'s answer: the order the alert would place now (and the KIS figures used),
    or why it would be refused; always said to be a test."""
    lines = [t(lang, "test.title",
               env=env_and_account(lang, notice.env, notice.account) if notice.env else "-")]
    if notice.kind is NoticeKind.ORDER_ACCEPTED:
        if notice.price and (notice.order_type != "market" or notice.marketable):
            price = t(lang, "notice.price_limit", price=money(lang, notice.price, notice.currency))
        else:
            price = t(lang, "notice.price_market")
        lines.append(t(
            lang, "test.would_order", stock=stock(notice.symbol, notice.name, notice.exchange),
            side=side_label(lang, notice.side), quantity=won(notice.quantity), price=price,
        ))
        figures = notice.reason_params
        if figures.get("current_price"):
            shown = _money_param(lang, figures["current_price"], notice.currency)
            lines.append(t(lang, "test.current_price", price=shown))
        if figures.get("held"):
            lines.append(t(lang, "test.held", held=figures["held"]))
        if figures.get("market_closed"):
            closed = render_reason(lang, "market_closed", figures, figures["market_closed"])
            lines.append(t(lang, "test.market_closed", reason=closed))
    elif notice.kind is NoticeKind.ORDER_FAILED:
        lines.append(t(lang, "test.failed", reason=reason_text(lang, notice)))
    else:
        if notice.symbol:
            lines.append(_subject(lang, notice))
        lines.append(t(lang, "test.refused", reason=reason_text(lang, notice)))
    return "\n".join(lines)
