"""How the notifier sends the portfolio features' messages (`storage.portfolio_notices`):
the text in the user's language, the buttons a confirm-mode question carries, the
question's message id kept (so its buttons can be removed), and on expiry the buttons
taken off the question before the expiry is reported.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from aiogram import Bot
from aiogram.types import InlineKeyboardMarkup

from bot.formatting import env_and_account, money, side_label, stock, won
from bot.portfolio_keyboards import approval_keyboard
from bot.texts import Lang, t
from storage.facade import Storage
from storage.notices import NoticeError
from storage.portfolio_notices import (
    CARD_KINDS,
    Card,
    ConfirmExpired,
    ConfirmRequest,
    Digest,
    OrderSubject,
    ReservationCard,
    ReservationEvent,
    card_from_payload,
)
from storage.records import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message ready to send: `before` runs just before it (with the bot), `after`
    gets the id Telegram gave it."""

    text: str
    markup: InlineKeyboardMarkup | None = None
    before: Callable[[Bot], Awaitable[None]] | None = None
    after: Callable[[int], Awaitable[None]] | None = None


def is_card(kind: str) -> bool:
    return kind in CARD_KINDS


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text.replace(",", ""))
    except (InvalidOperation, AttributeError):
        return None
    return value if value.is_finite() else None


def sizing_text(lang: Lang, subject: OrderSubject) -> str:
    value = subject.value
    if subject.sizing == "amount":
        amount = _decimal(value)
        shown = money(lang, amount, subject.currency) if amount is not None else value
        return t(lang, "sizing.amount", value=shown)
    if subject.sizing in ("quantity", "position"):
        count = _decimal(value)
        shown = won(count) if count is not None else value
        return t(lang, f"sizing.{subject.sizing}", value=shown)
    if subject.sizing == "percent":
        return t(lang, "sizing.percent", value=value)
    if subject.sizing == "all":
        return t(lang, "sizing.all")
    return ""


def subject_text(lang: Lang, subject: OrderSubject) -> str:
    """`삼성전자 (005930) 매수 3주 시장가`, then the alert's comment on its own line."""
    parts = [stock(subject.symbol, subject.name, subject.exchange)]
    if subject.side:
        parts.append(side_label(lang, subject.side))
    parts.append(sizing_text(lang, subject))
    price = _decimal(subject.price) if subject.price else None
    if subject.order_type == "market":
        parts.append(t(lang, "notice.price_market"))
    elif price is not None:
        parts.append(t(lang, "notice.price_limit", price=money(lang, price, subject.currency)))
    text = " ".join(p for p in parts if p)
    if subject.comment:
        text += "\n" + t(lang, "notice.comment", comment=subject.comment)
    return text


def digest_text(lang: Lang, card: Digest) -> str:
    env = env_and_account(lang, card.env, card.account)
    lines = [t(lang, "card.digest_title", market=t(lang, f"market.{card.market}"),
               day=card.day, env=env)]
    if card.orders:
        outcomes = ", ".join(
            f"{_status(lang, status)} {count}" for status, count in card.outcomes.items()
        )
        lines.append(t(lang, "card.digest_orders", orders=card.orders, outcomes=outcomes))
    else:
        lines.append(t(lang, "card.digest_no_orders"))
    if card.fills:
        lines.append(t(lang, "card.digest_fills"))
        for fill in card.fills:
            price = _decimal(fill.price) or Decimal(0)
            lines.append(t(
                lang, "card.digest_fill", stock=stock(fill.symbol, fill.name, fill.exchange),
                side=side_label(lang, fill.side), quantity=won(fill.quantity),
                price=money(lang, price, card.currency),
            ))
        lines.append(t(
            lang, "card.digest_traded",
            bought=money(lang, _decimal(card.bought) or Decimal(0), card.currency),
            sold=money(lang, _decimal(card.sold) or Decimal(0), card.currency),
        ))
    if card.refused:
        lines.append(t(lang, "card.digest_refused", count=card.refused,
                       reasons="; ".join(card.reasons) or "-"))
    pnl = _decimal(card.pnl) if card.pnl else None
    if pnl is None or card.pnl_source == "unavailable":
        lines.append(t(lang, "card.digest_pnl_unavailable"))
    else:
        key = "card.digest_pnl_kis" if card.pnl_source == "kis" else "card.digest_pnl_computed"
        lines.append(t(lang, key, pnl=signed_money(lang, pnl, card.currency)))
    return "\n".join(lines)


def signed_money(lang: Lang, amount: Decimal, currency: str) -> str:
    """`+3,000원`, `-$12.50`: a profit or loss with its sign."""
    sign = "+" if amount > 0 else "-" if amount < 0 else ""
    return sign + money(lang, abs(amount), currency)


def _status(lang: Lang, status: str) -> str:
    key = f"order_status.{status}"
    try:
        return t(lang, key)
    except KeyError:
        return status


def reservation_text(lang: Lang, card: ReservationCard) -> str:
    subject = card.subject
    env = env_and_account(lang, subject.env, subject.account)
    text = subject_text(lang, subject)
    if card.event is ReservationEvent.PLACED:
        return t(lang, "card.resv_placed", env=env, subject=text, opens=card.opens)
    if card.event is ReservationEvent.EXECUTED:
        avg = _decimal(card.avg_price) if card.avg_price else None
        price = f" @ {money(lang, avg, subject.currency)}" if avg else ""
        return t(lang, "card.resv_executed", env=env, subject=text,
                 order_no=card.order_no or "-", filled=won(card.filled), price=price)
    key = {
        ReservationEvent.FAILED: "card.resv_failed",
        ReservationEvent.UNKNOWN: "card.resv_unknown",
        ReservationEvent.REJECTED: "card.resv_rejected",
        ReservationEvent.CANCELLED: "card.resv_cancelled",
    }[card.event]
    return t(lang, key, env=env, subject=text, reason=card.reason or "-")


class CardRenderer:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def render(self, message: OutboxMessage, lang: Lang) -> Rendered:
        """The card in an outbox row, ready to send; `NoticeError` if it is not one."""
        card: Card = card_from_payload(message.payload)
        if isinstance(card, ConfirmRequest):
            return self._question(card, lang)
        if isinstance(card, ConfirmExpired):
            return await self._expired(card, message.chat_id, lang)
        if isinstance(card, Digest):
            return Rendered(digest_text(lang, card))
        if isinstance(card, ReservationCard):
            return Rendered(reservation_text(lang, card))
        raise NoticeError("unknown card")  # pragma: no cover - the union is exhausted

    def _question(self, card: ConfirmRequest, lang: Lang) -> Rendered:
        text = t(lang, "card.confirm",
                 env=env_and_account(lang, card.subject.env, card.subject.account),
                 subject=subject_text(lang, card.subject), seconds=card.seconds)
        confirmations = self._storage.confirmations

        async def remember(message_id: int) -> None:
            await confirmations.set_message(card.confirmation_id, message_id)

        return Rendered(text, approval_keyboard(card.confirmation_id), after=remember)

    async def _expired(self, card: ConfirmExpired, chat_id: int, lang: Lang) -> Rendered:
        text = t(lang, "card.confirm_expired",
                 env=env_and_account(lang, card.subject.env, card.subject.account),
                 subject=subject_text(lang, card.subject))
        asked = await self._storage.confirmations.get(card.confirmation_id)
        message_id = asked.message_id if asked is not None else None
        if message_id is None:
            return Rendered(text)

        async def take_buttons_off(bot: Bot) -> None:
            # Already gone (pressed, edited, deleted) is fine: the report still goes.
            with contextlib.suppress(Exception):
                await bot.edit_message_reply_markup(
                    chat_id=chat_id, message_id=message_id, reply_markup=None
                )

        return Rendered(text, before=take_buttons_off)
