"""parse_alert: the SPEC alert message table, and properties over arbitrary input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kis.models import OrderType, Side
from webhook_server.alert import (
    Alert,
    AlertError,
    Amount,
    Position,
    Quantity,
    SellAll,
    SellPercent,
    parse_alert,
)


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def parse(**fields: Any) -> Alert:
    return parse_alert(body(**fields))


def error(raw: bytes) -> AlertError:
    with pytest.raises(AlertError) as info:
        parse_alert(raw)
    return info.value


# --- ticker ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ticker", "symbol"),
    [
        ("005930", "005930"),
        ("KRX:005930", "005930"),
        ("A005930", "005930"),
        ("a005930", "005930"),
        (" krx:005930 ", "005930"),
        ("KRX_DL:005930", "005930"),
        ("KRX: 005930", "005930"),
        ("KOSDAQ:035720", "035720"),
        ("0126z0", "0126Z0"),
        ("KRX:0126Z0", "0126Z0"),
        (105560, "105560"),
    ],
)
def test_ticker_normalised_to_six_character_krx_code(ticker: object, symbol: str) -> None:
    assert parse(ticker=ticker, action="buy", quantity=1).symbol == symbol


@pytest.mark.parametrize(
    "ticker",
    ["", "5930", "0059301", "NASDAQ:005930", "NYSE:ABCDEFG", "LSE:VOD", "005-30", "00593!",
     5930, [], {}, True],
)
def test_malformed_ticker_refused_naming_the_field(ticker: object) -> None:
    exc = error(body(ticker=ticker, action="buy", quantity=1))
    assert exc.field == "ticker"
    assert str(exc).startswith("ticker: ")


def test_missing_ticker() -> None:
    assert str(error(body(action="buy", quantity=1))) == "ticker: required"


# --- action ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "side"),
    [("buy", Side.BUY), ("BUY", Side.BUY), (" Sell ", Side.SELL), ("long", Side.BUY),
     ("short", Side.SELL), ("매수", Side.BUY), ("매도", Side.SELL)],
)
def test_action_words(action: str, side: Side) -> None:
    assert parse(ticker="005930", action=action, quantity=1).action is side


@pytest.mark.parametrize("action", ["hold", "", 1, None])
def test_missing_or_unknown_action(action: object) -> None:
    exc = error(body(ticker="005930", action=action, quantity=1))
    assert exc.field == "action"


def test_unexpanded_placeholder_gets_its_own_message() -> None:
    exc = error(body(ticker="005930", action="{{strategy.order.action}}", quantity=1))
    assert exc.field == "action"
    assert "{{strategy.order.action}}" in str(exc)
    assert "placeholders only when a real alert fires" in str(exc)


# --- sizing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "shares"),
    [(10, 10), ("10", 10), ("10.9", 10), (1.0, 1), ("1,000", 1000), (" 3 ", 3)],
)
def test_quantity_floored(quantity: object, shares: int) -> None:
    assert parse(ticker="005930", action="buy", quantity=quantity).sizing == Quantity(shares)


@pytest.mark.parametrize("quantity", [0, "0.99", -1, "-5", "abc", "1e30", True, [1], "NaN", "inf"])
def test_bad_quantity(quantity: object) -> None:
    exc = error(body(ticker="005930", action="buy", quantity=quantity))
    assert exc.field == "quantity"


def test_quantity_below_one_message() -> None:
    exc = error(body(ticker="005930", action="buy", quantity="0.5"))
    assert str(exc) == "quantity: below 1 share after rounding down"


def test_all_and_percent_for_sells() -> None:
    assert parse(ticker="005930", action="sell", quantity="ALL").sizing == SellAll()
    assert parse(ticker="005930", action="sell", quantity="50%").sizing == SellPercent(
        Decimal(50)
    )
    assert parse(ticker="005930", action="sell", quantity="100%").sizing == SellPercent(
        Decimal(100)
    )
    assert parse(ticker="005930", action="sell", quantity="12.5 %").sizing == SellPercent(
        Decimal("12.5")
    )


@pytest.mark.parametrize("quantity", ["0%", "100.1%", "-5%", "%", "x%"])
def test_bad_percent(quantity: str) -> None:
    assert error(body(ticker="005930", action="sell", quantity=quantity)).field == "quantity"


@pytest.mark.parametrize("quantity", ["all", "50%"])
def test_all_and_percent_refused_for_buys(quantity: str) -> None:
    exc = error(body(ticker="005930", action="buy", quantity=quantity))
    assert str(exc) == f"quantity: {quantity!r} is only for sells"


def test_amount() -> None:
    alert = parse(ticker="005930", action="buy", amount="1000000")
    assert alert.sizing == Amount(Decimal(1_000_000))
    assert parse(ticker="005930", action="buy", amount=1234.5).sizing == Amount(Decimal("1234.5"))
    for bad in (0, "-1", "x"):
        assert error(body(ticker="005930", action="buy", amount=bad)).field == "amount"


def test_position_mode_action_optional() -> None:
    alert = parse(ticker="005930", position="7")
    assert alert.sizing == Position(7) and alert.action is None
    assert parse(ticker="005930", position=0).sizing == Position(0)
    assert parse(ticker="005930", position="10.0").sizing == Position(10)
    assert error(body(ticker="005930", position=-1)).field == "position"


@pytest.mark.parametrize(
    "target", ["0.5", "5.9", "-0", "1e-400", "+1", "1_000", "١٢", "１２", "1,000", 0.5, 1e-4]
)
def test_position_target_is_a_plain_whole_number_never_rounded(target: object) -> None:
    """Rounding a target down to 0 would sell the whole holding: anything but a plain
    non-negative whole number is refused naming the field."""
    assert error(body(ticker="005930", position=target)).field == "position"


def test_position_target_of_json_minus_zero_is_refused() -> None:
    assert error(b'{"ticker": "005930", "position": -0}').field == "position"


@pytest.mark.parametrize("text", ["1_000", "١٢", "１２", "+1", "1e3", "0x10", " 1 2 "])
def test_numbers_are_ascii_digits_only(text: str) -> None:
    assert error(body(ticker="005930", action="buy", quantity=text)).field == "quantity"
    assert error(body(ticker="005930", action="buy", amount=text)).field == "amount"


def test_none_or_two_sizing_fields_name_them() -> None:
    none = error(body(ticker="005930", action="buy"))
    assert str(none).startswith("quantity/amount/position: one of them is required")
    two = error(body(ticker="005930", action="buy", quantity=1, amount=100))
    assert str(two) == "quantity, amount: give exactly one of quantity, amount, position"
    three = error(body(ticker="005930", action="buy", quantity=1, amount=100, position=1))
    assert three.field == "quantity, amount, position"


def test_duplicate_key_refused() -> None:
    raw = b'{"ticker": "005930", "action": "buy", "quantity": 1, "quantity": 100}'
    assert str(error(raw)) == "quantity: given more than once"


# --- order type and price -------------------------------------------------------------


def test_market_default_and_price_ignored() -> None:
    alert = parse(ticker="005930", action="buy", quantity=1, price="71234")
    assert alert.order_type is OrderType.MARKET and alert.price is None


@pytest.mark.parametrize(
    ("action", "price", "rounded"),
    [("buy", "71234", 71200), ("sell", "71234", 71300), ("buy", 4999.9, 4995),
     ("sell", "4999.5", 5000), ("sell", "71300", 71300), ("buy", "1,999", 1999)],
)
def test_limit_price_rounded_to_tick(action: str, price: object, rounded: int) -> None:
    alert = parse(ticker="005930", action=action, quantity=1, order_type="LIMIT", price=price)
    assert alert.order_type is OrderType.LIMIT
    assert alert.price == Decimal(rounded)


def test_limit_needs_price() -> None:
    assert str(error(body(ticker="005930", action="buy", quantity=1, order_type="limit"))) == (
        "price: required for a limit order"
    )
    assert error(body(ticker="005930", action="buy", quantity=1, order_type="stop")).field == (
        "order_type"
    )
    for bad in (0, "-1", "abc"):
        raw = body(ticker="005930", action="buy", quantity=1, order_type="limit", price=bad)
        assert error(raw).field == "price"


def test_position_mode_keeps_raw_limit_price() -> None:
    alert = parse(ticker="005930", position=3, order_type="limit", price="71234.5")
    assert alert.price == Decimal("71234.5")


# --- id, time, max_lag, comment -------------------------------------------------------


def test_id_time_lag_comment() -> None:
    alert = parse(
        ticker="005930", action="buy", quantity=1, id="L1-2024", time="2024-01-02T03:04:05Z",
        max_lag="30", comment=" breakout ", extra={"ignored": True},
    )
    assert alert.id == "L1-2024"
    assert alert.fired_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert alert.max_lag == 30.0
    assert alert.comment == "breakout"
    assert alert.fired_at is not None
    assert not alert.is_stale(alert.fired_at + timedelta(seconds=30))
    assert alert.is_stale(alert.fired_at + timedelta(seconds=31))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-01-02T12:04:05+09:00", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02 03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1704164645, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1704164645000, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)
def test_time_formats(raw: object, expected: datetime) -> None:
    assert parse(ticker="005930", action="buy", quantity=1, time=raw).fired_at == expected


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"time": "yesterday"}, "time"),
        ({"time": "0001-01-01T00:00:00+09:00"}, "time"),
        ({"time": 1e300}, "time"),
        ({"time": "{{timenow}}"}, "time"),
        ({"max_lag": 30}, "max_lag"),
        ({"time": "2024-01-02T03:04:05Z", "max_lag": 0}, "max_lag"),
        ({"id": "x" * 129}, "id"),
        ({"id": "{{strategy.order.id}}"}, "id"),
        ({"id": ["a"]}, "id"),
        ({"comment": "x" * 501}, "comment"),
        ({"comment": 5}, "comment"),
        ({"comment": "nul\u0000"}, "comment"),
    ],
)
def test_optional_fields_validated(fields: dict[str, Any], field: str) -> None:
    assert error(body(ticker="005930", action="buy", quantity=1, **fields)).field == field


def test_id_and_comment_limits_inclusive() -> None:
    alert = parse(ticker="005930", action="buy", quantity=1, id="x" * 128, comment="y" * 500)
    assert alert.id == "x" * 128 and alert.comment == "y" * 500


# --- the body as a whole --------------------------------------------------------------


def test_bom_and_whitespace_tolerated() -> None:
    raw = b"\xef\xbb\xbf \n" + body(ticker="005930", action="buy", quantity=1) + b"\n"
    assert parse_alert(raw).symbol == "005930"


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        (b"", "body is empty"),
        (b"\xff\xfe", "body is not UTF-8"),
        (b"[1, 2]", "body must be a JSON object, not an array"),
        (b'"buy"', "body must be a JSON object, not a string"),
        (b"{", "body is not valid JSON"),
        (b"[" * 100_000, "body is not usable JSON: nested too deeply"),
        (b'{"quantity": ' + b"9" * 5000 + b"}", "body is not usable JSON"),
    ],
)
def test_body_level_errors(raw: bytes, start: str) -> None:
    assert str(error(raw)).startswith(start)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"ticker": 005930, "action": "buy", "quantity": 1}', "ticker"),
        (b'{"ticker": {{ticker}}, "action": "buy", "quantity": 1}', "ticker"),
        (b'{"ticker": "005930", "action": buy, "quantity": 1}', "action"),
        (b'{"ticker": "005930", "action": "buy", "quantity": {{strategy.order.contracts}}}',
         "quantity"),
    ],
)
def test_unquoted_placeholder_says_to_quote(raw: bytes, field: str) -> None:
    exc = error(raw)
    assert exc.field == field
    assert "placeholders must be quoted" in str(exc)
    assert f'"{field}": "' in str(exc)  # an example of the quoted form


def test_nan_names_the_field() -> None:
    exc = error(b'{"ticker": "005930", "action": "buy", "quantity": NaN}')
    assert str(exc) == "quantity: must be a number, not NaN"


def test_to_json_round_trip() -> None:
    alert = parse(
        ticker="005930", action="sell", quantity="33.3%", order_type="limit", price="71234",
        id="a", time="2024-01-02T03:04:05Z", max_lag=1.5, comment="c",
    )
    stored = json.loads(json.dumps(alert.to_json()))
    assert Alert.from_json(stored) == alert
    assert stored["order_type"] == "limit" and stored["action"] == "sell"
    assert stored["sizing"] == {"mode": "percent", "value": "33.3"}


# --- properties -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
FIELDS = ["ticker", "action", "quantity", "amount", "position", "order_type", "price", "id",
          "time", "max_lag", "comment"]


def _parses_or_alert_error(raw: bytes) -> Alert | None:
    try:
        return parse_alert(raw)
    except AlertError as exc:
        assert str(exc)  # always something to tell the sender
        return None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_alert_error(raw: bytes) -> None:
    _parses_or_alert_error(raw)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_alert_error(value: object) -> None:
    _parses_or_alert_error(json.dumps(value).encode())


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, json_values)))
def test_arbitrary_field_values_raise_only_alert_error(fields: dict[str, object]) -> None:
    _parses_or_alert_error(json.dumps(fields).encode())


VALID = body(ticker="KRX:005930", action="sell", quantity="50%", order_type="limit",
             price="71234", id="x", time="2024-01-02T03:04:05Z", max_lag=60, comment="c")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_message_raises_only_alert_error(data: st.DataObject) -> None:
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw)))
        operation = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if operation == "truncate":
            del raw[position:]
        elif operation == "delete" and position < len(raw):
            del raw[position]
        elif operation == "flip" and position < len(raw):
            raw[position] = data.draw(st.integers(0, 255))
        else:
            raw[position:position] = data.draw(st.binary(min_size=1, max_size=4))
    _parses_or_alert_error(bytes(raw))


valid_messages = st.fixed_dictionaries(
    {
        "ticker": st.sampled_from(["005930", "KRX:000660", "A035720", "krx_dl:0126z0"]),
        "action": st.sampled_from(["buy", "sell", "BUY", "Sell"]),
        "quantity": st.integers(1, 10**6).map(str) | st.integers(1, 10**6),
    },
    optional={
        "id": st.text(st.characters(codec="utf-8", exclude_characters="{}\x00"), max_size=128),
        "time": st.datetimes(
            min_value=datetime(2001, 1, 1), max_value=datetime(2098, 1, 1), timezones=st.just(UTC)
        ).map(lambda moment: moment.isoformat()),
        "comment": st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=500),
        "order_type": st.just("limit"),
        "price": st.decimals(min_value=1, max_value=10**8, places=2).map(str),
    },
).filter(lambda message: ("order_type" in message) <= ("price" in message))


@settings(max_examples=300, deadline=None)
@given(valid_messages)
def test_valid_messages_parse_and_round_trip(message: dict[str, Any]) -> None:
    alert = parse_alert(json.dumps(message).encode())
    assert alert.symbol == message["ticker"].upper().rpartition(":")[2].removeprefix("A")
    assert alert.action is Side(message["action"].lower())
    assert alert.sizing == Quantity(int(message["quantity"]))
    if "order_type" in message:
        assert alert.price is not None and alert.price > 0
    assert Alert.from_json(json.loads(json.dumps(alert.to_json()))) == alert
