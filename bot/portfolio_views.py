"""Pure builders of `/balance`, `/pnl` and `/limits` answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from bot.cards import signed_money
from bot.formatting import env_label, money, side_label, stock, won
from bot.pnl import SOURCE_KIS, MarketDay
from bot.texts import Lang, t
from kis.models import MarketPortfolio
from storage.options import LimitName, Limits
from storage.portfolio_records import LimitUse

# Telegram takes 4,096 characters a message; long answers are split on line breaks.
MESSAGE_LIMIT: Final = 3800


@dataclass(frozen=True, slots=True)
class MarketBalance:
    """One market's part of `/balance`: the portfolio, or why KIS could not say."""

    market: str
    portfolio: MarketPortfolio | None
    error: str = ""


def chunks(lines: Sequence[str], limit: int = MESSAGE_LIMIT) -> list[str]:
    """Lines joined into as few messages as fit Telegram's size."""
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        line = line[:limit]
        if current and size + len(line) + 1 > limit:
            messages.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        messages.append("\n".join(current))
    return messages


def rate_text(part: Decimal, whole: Decimal) -> str:
    if whole == 0:
        return "—"
    value = part / whole * 100
    return f"{'+' if value > 0 else ''}{value:.2f}%"


def _amount(lang: Lang, value: Decimal | None, currency: str) -> str:
    if value is None:
        return t(lang, "balance.unknown")
    return money(lang, _rounded(value, currency), currency)


def _rounded(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal("0.01") if currency == "USD" else Decimal(1))


def _price(lang: Lang, value: Decimal, currency: str) -> str:
    # Prices keep their places (US sub-penny); whole won stay whole.
    if currency != "USD":
        value = value.quantize(Decimal(1))
    elif value == value.quantize(Decimal("0.01")):
        value = value.quantize(Decimal("0.01"))
    return money(lang, value, currency)


def balance_lines(lang: Lang, env: str, when: str, markets: Sequence[MarketBalance]) -> list[str]:
    lines = [t(lang, "balance.title", env=env_label(lang, env), time=when)]
    for part in markets:
        lines.append(t(lang, "balance.market", market=t(lang, f"market.{part.market}")))
        book = part.portfolio
        if book is None:
            lines.append(t(lang, "balance.failed", reason=part.error or "-"))
            continue
        currency = book.currency
        if book.cash is not None:
            lines.append(t(lang, "balance.cash", cash=_amount(lang, book.cash, currency),
                           power=_amount(lang, book.buying_power, currency)))
        elif book.buying_power is not None:
            lines.append(t(lang, "balance.power",
                           power=_amount(lang, book.buying_power, currency)))
        if not book.holdings:
            lines.append(t(lang, "balance.none"))
            continue
        for holding in book.holdings:
            lines.append(t(
                lang, "balance.holding",
                stock=stock(holding.symbol, holding.name, holding.exchange),
                quantity=won(holding.quantity),
                avg=_price(lang, holding.avg_price, currency),
                price=_price(lang, holding.price, currency),
            ))
            lines.append(t(
                lang, "balance.holding_value",
                value=_amount(lang, holding.value, currency),
                profit=signed_money(lang, _rounded(holding.profit, currency), currency),
                rate=rate_text(holding.profit, holding.cost),
            ))
        profit = book.value - book.cost
        lines.append(t(
            lang, "balance.total", value=_amount(lang, book.value, currency),
            profit=signed_money(lang, _rounded(profit, currency), currency),
            rate=rate_text(profit, book.cost),
        ))
    return lines


def _clock(hhmmss: str) -> str:
    return f"{hhmmss[0:2]}:{hhmmss[2:4]}" if len(hhmmss) >= 4 else "--:--"


def pnl_lines(lang: Lang, env: str, days: Sequence[MarketDay]) -> list[str]:
    lines = [t(lang, "pnl.title", env=env_label(lang, env))]
    computed = False
    for day in days:
        lines.append(t(lang, "pnl.market", market=t(lang, f"market.{day.market}"),
                       day=day.day.isoformat()))
        if day.error:
            lines.append(t(lang, "pnl.failed", reason=day.error))
            continue
        if day.from_records:
            lines.append(t(lang, "pnl.from_records"))
        if not day.trades:
            lines.append(t(lang, "pnl.no_fills"))
        for trade in sorted(day.trades, key=lambda tr: tr.time):
            lines.append(t(
                lang, "pnl.fill", time=_clock(trade.time),
                stock=stock(trade.symbol, trade.name, trade.exchange),
                side=side_label(lang, trade.side), quantity=won(trade.quantity),
                price=_price(lang, trade.price, day.currency),
            ))
        if day.realised is not None:
            pnl = signed_money(lang, _rounded(day.realised, day.currency), day.currency)
            key = "pnl.realised_kis" if day.source == SOURCE_KIS else "pnl.realised_computed"
            computed = computed or day.source != SOURCE_KIS
            lines.append(t(lang, key, pnl=pnl))
        if day.missing_cost:
            lines.append(t(lang, "pnl.missing_cost", symbols=", ".join(day.missing_cost)))
    if computed and env == "paper":
        lines.append(t(lang, "pnl.paper_note"))
    return lines


def limit_value(lang: Lang, name: LimitName, currency: str, value: Decimal | None) -> str:
    if value is None:
        return t(lang, "limits.none")
    if name is LimitName.ORDERS:
        return t(lang, "limits.count", count=won(value))
    return money(lang, value, currency)


def limits_lines(
    lang: Lang, limits: Limits, used: Sequence[tuple[str, str, LimitUse]]
) -> list[str]:
    """The caps, today's use per market (market, currency, use), and how to set them."""
    def both(name: LimitName) -> dict[str, str]:
        return {c.lower(): limit_value(lang, name, c, limits.get(name, c)) for c in ("KRW", "USD")}

    lines = [
        t(lang, "limits.title"),
        t(lang, "limits.line_order", **both(LimitName.ORDER)),
        t(lang, "limits.line_day", **both(LimitName.DAY)),
        t(lang, "limits.line_orders",
          orders=limit_value(lang, LimitName.ORDERS, "", limits.get(LimitName.ORDERS))),
    ]
    for market, currency, use in used:
        name = t(lang, f"market.{market}")
        if limits.get(LimitName.DAY, currency) is None:
            # Amounts are counted only under a daily cap (a market order's needs a quote).
            lines.append(t(lang, "limits.used_orders", market=name, orders=won(use.orders)))
        else:
            lines.append(t(lang, "limits.used", market=name, orders=won(use.orders),
                           bought=money(lang, use.bought, currency)))
    lines.append("")
    lines.append(t(lang, "limits.usage"))
    return lines
