"""size_order: every sizing mode against a price and a holding, as a table."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest

from bot.texts import EN, KO
from kis.markets import Krx
from kis.models import OrderType, Side
from webhook_server.alert import parse_alert
from webhook_server.guards import sizing_refusal
from webhook_server.sizing import (
    RefusalCode,
    SizedOrder,
    SizingNeeds,
    SizingRefusal,
    needs,
    size_order,
)

BUY, SELL, MKT, LMT = Side.BUY, Side.SELL, OrderType.MARKET, OrderType.LIMIT

KRX = Krx()


def alert(**fields: Any) -> Any:
    return parse_alert(json.dumps({"ticker": "005930", **fields}).encode())


@pytest.mark.parametrize(
    ("fields", "price", "holding", "expected"),
    [
        # quantity
        ({"action": "buy", "quantity": 10}, None, None, SizedOrder(BUY, 10, MKT, 0)),
        ({"action": "sell", "quantity": 10}, None, 25, SizedOrder(SELL, 10, MKT, 0)),
        ({"action": "sell", "quantity": 10}, None, 10, SizedOrder(SELL, 10, MKT, 0)),
        # all / percent
        ({"action": "sell", "quantity": "all"}, None, 7, SizedOrder(SELL, 7, MKT, 0)),
        ({"action": "sell", "quantity": "50%"}, None, 7, SizedOrder(SELL, 3, MKT, 0)),
        ({"action": "sell", "quantity": "100%"}, None, 7, SizedOrder(SELL, 7, MKT, 0)),
        ({"action": "sell", "quantity": "33.4%"}, None, 3, SizedOrder(SELL, 1, MKT, 0)),
        # amount: floor(amount / current price)
        ({"action": "buy", "amount": 1_000_000}, 71_500, None, SizedOrder(BUY, 13, MKT, 0)),
        ({"action": "buy", "amount": 71_500}, 71_500, None, SizedOrder(BUY, 1, MKT, 0)),
        ({"action": "sell", "amount": 150_000}, 71_500, 5, SizedOrder(SELL, 2, MKT, 0)),
        # amount with a limit order: divided by the limit price
        ({"action": "buy", "amount": 190_000, "order_type": "limit", "price": 50_050},
         None, None, SizedOrder(BUY, 3, LMT, 50_000)),
        # limit rounding by side
        ({"action": "buy", "quantity": 1, "order_type": "limit", "price": 71_234},
         None, None, SizedOrder(BUY, 1, LMT, 71_200)),
        ({"action": "sell", "quantity": 1, "order_type": "limit", "price": 71_234},
         None, 1, SizedOrder(SELL, 1, LMT, 71_300)),
        # target position: the side comes from the difference, price rounded by that side
        ({"position": 10}, None, 4, SizedOrder(BUY, 6, MKT, 0)),
        ({"position": 0}, None, 4, SizedOrder(SELL, 4, MKT, 0)),
        ({"position": 10, "action": "buy"}, None, 4, SizedOrder(BUY, 6, MKT, 0)),
        ({"position": 2, "order_type": "limit", "price": "71234"}, None, 5,
         SizedOrder(SELL, 3, LMT, 71_300)),
        ({"position": 8, "order_type": "limit", "price": "71234"}, None, 5,
         SizedOrder(BUY, 3, LMT, 71_200)),
    ],
)
def test_sized(fields: dict[str, Any], price: int | None, holding: int | None,
               expected: SizedOrder) -> None:
    assert size_order(alert(**fields), KRX, current_price=price, holding=holding) == expected


@pytest.mark.parametrize(
    ("action", "target", "holding", "needed"), [("sell", 10, 0, "buy"), ("buy", 2, 5, "sell")]
)
def test_position_against_its_action_is_refused_not_traded_the_other_way(
    action: str, target: int, holding: int, needed: str
) -> None:
    refusal = size_order(alert(position=target, action=action), KRX, holding=holding)
    assert isinstance(refusal, SizingRefusal)
    assert refusal.reason_code is RefusalCode.POSITION_AGAINST_ACTION
    assert refusal.params["side"] == needed and refusal.params["action"] == action


@pytest.mark.parametrize(
    ("fields", "price", "holding", "code", "message", "params"),
    [
        ({"action": "buy", "amount": 50_000}, 71_500, None, RefusalCode.BELOW_ONE_SHARE,
         "amount 50,000 KRW is less than one share of 005930 at 71,500 KRW",
         {"amount": "50,000", "price": "71,500", "currency": "KRW"}),
        ({"action": "buy", "amount": "1234567.5"}, 1_500_000, None, RefusalCode.BELOW_ONE_SHARE,
         "amount 1,234,567.50 KRW is less than one share of 005930 at 1,500,000 KRW",
         {"amount": "1,234,567.50", "price": "1,500,000", "currency": "KRW"}),
        ({"action": "sell", "quantity": 1}, None, 0, RefusalCode.NOT_HELD,
         "cannot sell 005930: no shares held", {}),
        ({"action": "sell", "quantity": "all"}, None, 0, RefusalCode.NOT_HELD,
         "cannot sell 005930: no shares held", {}),
        ({"action": "sell", "amount": 100_000}, 71_500, 0, RefusalCode.NOT_HELD,
         "cannot sell 005930: no shares held", {}),
        ({"action": "sell", "quantity": 11}, None, 10, RefusalCode.INSUFFICIENT_HOLDING,
         "cannot sell 11 shares of 005930: 10 can be sold", {"quantity": "11", "sellable": "10"}),
        ({"action": "sell", "quantity": "50%"}, None, 1, RefusalCode.PERCENT_ROUNDS_TO_ZERO,
         "50% of 1 share of 005930 rounds down to 0 shares", {"percent": "50", "held": "1"}),
        ({"position": 5}, None, 5, RefusalCode.NOTHING_TO_DO,
         "already holding 5 shares of 005930, the target position", {"held": "5"}),
    ],
)
def test_refused(fields: dict[str, Any], price: int | None, holding: int | None,
                 code: RefusalCode, message: str, params: dict[str, str]) -> None:
    parsed = alert(**fields)
    refusal = size_order(parsed, KRX, current_price=price, holding=holding)
    assert refusal == SizingRefusal(code, message, params)
    # As a chat reason: a catalog text that asks for exactly these params, in both languages.
    chat = sizing_refusal(parsed, refusal)
    assert chat.code == code.value and chat.reason == message
    for catalog in (KO, EN):
        template = catalog[f"reason.{chat.reason_key}"]
        asked = {n for _, n, _, _ in string.Formatter().parse(template) if n}
        # `currency` is not shown itself: it says how the money figures read
        assert set(chat.params) - {"currency"} == asked


def test_needs_says_what_to_fetch() -> None:
    assert needs(alert(action="buy", quantity=1), KRX) == SizingNeeds(price=False, holding=False)
    assert needs(alert(action="buy", amount=1), KRX) == SizingNeeds(price=True, holding=False)
    assert needs(alert(action="buy", amount=1, order_type="limit", price=5), KRX) == SizingNeeds(
        price=False, holding=False
    )
    assert needs(alert(action="sell", quantity=1), KRX) == SizingNeeds(price=False, holding=True)
    assert needs(alert(position=1), KRX) == SizingNeeds(price=False, holding=True)


def test_missing_inputs_are_a_pipeline_bug() -> None:
    with pytest.raises(ValueError, match="current price"):
        size_order(alert(action="buy", amount=1000), KRX)
    with pytest.raises(ValueError, match="holding"):
        size_order(alert(action="sell", quantity="all"), KRX)


def test_kis_tick_overrides_the_table() -> None:
    # An ETF at 1,234 KRW trades in 5 KRW steps (aspr_unit=5), not the stock table's 1.
    sized = size_order(
        alert(action="buy", quantity=1, order_type="limit", price=1234), KRX, tick=5
    )
    assert sized == SizedOrder(BUY, 1, LMT, 1230)
