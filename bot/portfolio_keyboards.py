"""Inline keyboards of the portfolio features and their typed callback data."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import Lang, t
from bot.texts_portfolio import BUTTON_PLACE, BUTTON_SKIP


class Approval(CallbackData, prefix="approve"):
    """✅ / ❌ on a confirm-mode question."""

    id: int
    place: bool


class CancelOrder(CallbackData, prefix="cxl"):
    order_id: int


class CancelReservation(CallbackData, prefix="cxlr"):
    reservation_id: int


class CloseChoice(CallbackData, prefix="close"):
    """`/close`'s answer: `nonce` names the question (a second press is a repeat of the
    first); `symbol` "*" means every holding."""

    nonce: str
    exchange: str
    symbol: str
    sell: bool
    account: int = 0  # the account it sells in (0: the default)


def approval_keyboard(confirmation_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(
            text=BUTTON_PLACE, callback_data=Approval(id=confirmation_id, place=True).pack()
        ),
        InlineKeyboardButton(
            text=BUTTON_SKIP, callback_data=Approval(id=confirmation_id, place=False).pack()
        ),
    ]])


def cancel_keyboard(
    lang: Lang,
    orders: Sequence[tuple[int, str]],
    reservations: Sequence[tuple[int, str]],
) -> InlineKeyboardMarkup | None:
    """One Cancel button per open order (id, symbol) and per open reservation."""
    rows = [
        [InlineKeyboardButton(
            text=t(lang, "orders.cancel_button", id=order_id, symbol=symbol),
            callback_data=CancelOrder(order_id=order_id).pack(),
        )]
        for order_id, symbol in orders
    ]
    rows += [
        [InlineKeyboardButton(
            text=t(lang, "orders.resv_cancel_button", id=reservation_id, symbol=symbol),
            callback_data=CancelReservation(reservation_id=reservation_id).pack(),
        )]
        for reservation_id, symbol in reservations
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def close_keyboard(
    lang: Lang, nonce: str, exchange: str, symbol: str, account: int = 0
) -> InlineKeyboardMarkup:
    def button(key: str, sell: bool) -> InlineKeyboardButton:
        data = CloseChoice(nonce=nonce, exchange=exchange, symbol=symbol, sell=sell,
                           account=account)
        return InlineKeyboardButton(text=t(lang, key), callback_data=data.pack())

    return InlineKeyboardMarkup(inline_keyboard=[[
        button("close.button_sell", True), button("close.button_cancel", False),
    ]])
