"""What `moahook demo` prints after the tour: the alerts' HTTP answers, the orders as
moahook stored them next to the simulator's books, and the fills. Pure formatting."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.standin import ChatMessage
from bot.standin.transcript import render_message


@dataclass(frozen=True, slots=True)
class AlertExchange:
    """One TradingView-style POST and the answer moahook gave."""

    label: str
    body: str
    status: int
    answer: str


@dataclass(frozen=True, slots=True)
class OrderRow:
    symbol: str
    name: str
    side: str
    quantity: int
    order_type: str
    price: str
    status: str
    sim_status: str
    order_no: str


@dataclass(frozen=True, slots=True)
class FillRow:
    order_no: str
    symbol: str
    quantity: int
    price: Decimal
    time: str


def render_chat(
    timeline: Sequence[ChatMessage], originals: Mapping[int, ChatMessage]
) -> str:
    """The chat as the user saw it. A message the bot later edited (the keyboard replaced by
    the choice) shows first as it was, with its buttons, and again edited after the press."""
    lines: list[str] = []
    edited_later: dict[int, ChatMessage] = {}
    for message in timeline:
        original = originals.get(message.id)
        if message.kind == "text" and message.edited and original is not None:
            lines.append(render_message(original))
            edited_later[message.id] = message
            continue
        lines.append(render_message(message))
        if message.kind == "press" and message.id in edited_later:
            lines.append(render_message(edited_later.pop(message.id)))
    lines.extend(render_message(message) for message in edited_later.values())
    return "".join(f"{line}\n" for line in lines)


def display_width(text: str) -> int:
    """Columns on a terminal: Hangul and other wide characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool = False) -> str:
    gap = " " * max(0, width - display_width(text))
    return gap + text if right else text + gap


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    """A plain text table; columns in `numeric` are right-aligned."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        widths = [max(w, display_width(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            _pad(cell, width, right=index in numeric)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def render_exchanges(exchanges: Sequence[AlertExchange]) -> str:
    lines: list[str] = []
    for exchange in exchanges:
        lines.append(f"{exchange.label}")
        lines.append(f"  POST /hook/<token>  content-type: text/plain  {exchange.body}")
        lines.append(f"  → {exchange.status} {exchange.answer}")
    return "\n".join(lines)


def render_orders(rows: Sequence[OrderRow]) -> str:
    if not rows:
        return "(no orders)"
    return table(
        ["symbol", "name", "side", "qty", "type", "avg price", "moahook", "simulator",
         "KIS order no"],
        [
            [r.symbol, r.name, r.side, str(r.quantity), r.order_type, r.price, r.status,
             r.sim_status, r.order_no]
            for r in rows
        ],
        numeric={3, 5},
    )


def render_fills(rows: Sequence[FillRow]) -> str:
    if not rows:
        return "(no fills)"
    return table(
        ["KIS order no", "symbol", "qty", "price", "filled at"],
        [[r.order_no, r.symbol, str(r.quantity), f"{r.price.normalize():,f}", r.time]
         for r in rows],
        numeric={2, 3},
    )


def section(title: str, body: str) -> str:
    return f"\n── {title} " + "─" * max(3, 60 - display_width(title)) + f"\n{body.rstrip()}\n"
