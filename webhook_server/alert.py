"""The TradingView alert message (SPEC section 4, "Alert message"): parse and validate. Pure.

`parse_alert(body)` judges everything that can be judged from the message alone and
raises only `AlertError`; what needs KIS or the user's state (current price, holding)
is left to sizing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Final, Literal

from kis.env import Environment as _Environment
from kis.markets import (
    Instrument,
    Market,
    Markets,
    OrderTypeError,
    SymbolError,
    default_markets,
)
from kis.models import OrderType, Side
from storage.account_names import ALL_ACCOUNTS, AccountNameError, normalize_account_name

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]

MAX_ID_LENGTH: Final = 128
MAX_COMMENT_LENGTH: Final = 500
MAX_SHARES: Final = 1_000_000_000
MAX_AMOUNT: Final = Decimal(10) ** 13  # in the market's currency
MAX_PRICE: Final = Decimal(10) ** 9
DEFAULT_MARKETS: Final = default_markets()
MAX_LAG_SECONDS: Final = 7 * 24 * 3600
MAX_ACCOUNTS: Final = 20  # names in one alert's `account`
SIZING_FIELDS: Final = ("quantity", "amount", "position")
# Where an alert came from: TradingView, or `/close` in the chat (the way out: no confirm
# step, no risk limits, and it works while alerts are paused).
ORIGIN_ALERT: Final = "alert"
ORIGIN_CLOSE: Final = "close"


class AlertError(ValueError):
    """The alert message is unusable; `str()` is the client-facing text, naming the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


# --- sizing: a small tagged union -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quantity:
    """Whole shares."""

    shares: int
    mode: Literal["quantity"] = "quantity"


@dataclass(frozen=True, slots=True)
class SellAll:
    """`"quantity": "all"`: the whole holding (sells only)."""

    mode: Literal["all"] = "all"


@dataclass(frozen=True, slots=True)
class SellPercent:
    """`"quantity": "50%"`: that share of the holding, 0 < percent <= 100 (sells only)."""

    percent: Decimal
    mode: Literal["percent"] = "percent"


@dataclass(frozen=True, slots=True)
class Amount:
    """Money (the market's currency) to spend or raise; shares = floor(money / price)."""

    krw: Decimal  # the amount; named for KRX, holds USD for US alerts
    mode: Literal["amount"] = "amount"


@dataclass(frozen=True, slots=True)
class Position:
    """Target holding after this alert; the order is the difference from the holding."""

    target: int
    mode: Literal["position"] = "position"


Sizing = Quantity | SellAll | SellPercent | Amount | Position


@dataclass(frozen=True, slots=True)
class Alert:
    symbol: str
    action: Side | None  # None only in position mode
    sizing: Sizing
    order_type: OrderType = OrderType.MARKET
    # Limit price: already on a tick for buy/sell; raw in position mode (side unknown yet).
    price: Decimal | None = None
    id: str | None = None
    fired_at: datetime | None = None
    max_lag: float | None = None
    comment: str | None = None
    market: str = "KRX"
    exchange: str = "KRX"
    origin: str = ORIGIN_ALERT
    # SPEC section 16: the accounts it is for, lowercase; () = the user's default
    # account, ("all",) = every account.
    accounts: tuple[str, ...] = ()

    @property
    def instrument(self) -> Instrument:
        return Instrument(self.market, self.symbol, self.exchange)
    # A `price` sent with a market order ({{close}} in many templates): not used, and the
    # notice says so.
    ignored_price: str | None = None

    def lag_seconds(self, now: datetime) -> float | None:
        """Seconds since the alert fired, when it says when."""
        if self.fired_at is None:
            return None
        return (now - self.fired_at).total_seconds()

    def is_stale(self, now: datetime) -> bool:
        """True when `time` and `max_lag` are given and the alert is older than allowed."""
        lag = self.lag_seconds(now)
        return lag is not None and self.max_lag is not None and lag > self.max_lag

    def to_json(self) -> dict[str, JSONValue]:
        sizing: dict[str, JSONValue] = {"mode": self.sizing.mode}
        match self.sizing:
            case Quantity(shares=shares):
                sizing["value"] = shares
            case SellPercent(percent=percent):
                sizing["value"] = str(percent)
            case Amount(krw=krw):
                sizing["value"] = str(krw)
            case Position(target=target):
                sizing["value"] = target
            case SellAll():
                pass
        return {
            "symbol": self.symbol,
            "market": self.market,
            "exchange": self.exchange,
            "action": None if self.action is None else self.action.value,
            "sizing": sizing,
            "order_type": self.order_type.name.lower(),
            "price": None if self.price is None else str(self.price),
            "id": self.id,
            "time": None if self.fired_at is None else self.fired_at.isoformat(),
            "max_lag": self.max_lag,
            "comment": self.comment,
            "ignored_price": self.ignored_price,
            **({"origin": self.origin} if self.origin != ORIGIN_ALERT else {}),
            **({"account": ",".join(self.accounts)} if self.accounts else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, JSONValue]) -> Alert:
        """Rebuild what `to_json` stored (trusted input; raises ValueError/KeyError if not)."""
        sizing_data = data["sizing"]
        if not isinstance(sizing_data, dict):
            raise ValueError("sizing must be an object")
        mode = sizing_data["mode"]
        value = sizing_data.get("value")
        sizing: Sizing
        if mode == "quantity" and isinstance(value, int):
            sizing = Quantity(value)
        elif mode == "all":
            sizing = SellAll()
        elif mode == "percent" and isinstance(value, str):
            sizing = SellPercent(Decimal(value))
        elif mode == "amount" and isinstance(value, str):
            sizing = Amount(Decimal(value))
        elif mode == "position" and isinstance(value, int):
            sizing = Position(value)
        else:
            raise ValueError(f"unknown sizing {sizing_data!r}")
        action, price, time = data.get("action"), data.get("price"), data.get("time")
        ident, max_lag, comment = data.get("id"), data.get("max_lag"), data.get("comment")
        ignored = data.get("ignored_price")
        account = data.get("account")
        return cls(
            symbol=str(data["symbol"]),
            action=None if action is None else Side(str(action)),
            sizing=sizing,
            order_type=OrderType[str(data.get("order_type", "market")).upper()],
            price=None if price is None else Decimal(str(price)),
            id=None if ident is None else str(ident),
            fired_at=None if time is None else datetime.fromisoformat(str(time)),
            max_lag=None if max_lag is None else float(str(max_lag)),
            comment=None if comment is None else str(comment),
            market=str(data.get("market") or "KRX"),
            exchange=str(data.get("exchange") or "KRX"),
            ignored_price=None if ignored is None else str(ignored),
            origin=str(data.get("origin") or ORIGIN_ALERT),
            accounts=tuple(str(account).split(",")) if account else (),
        )


# --- parsing -----------------------------------------------------------------------------

_EXAMPLE: Final = (
    '{"ticker": "{{ticker}}", "action": "{{strategy.order.action}}", '
    '"quantity": "{{strategy.order.contracts}}"}'
)
_PLACEHOLDER_FOR: Final = {
    "ticker": "{{ticker}}",
    "action": "{{strategy.order.action}}",
    "quantity": "{{strategy.order.contracts}}",
    "position": "{{strategy.position_size}}",
    "price": "{{close}}",
    "amount": "1000000",
    "id": "{{strategy.order.id}}",
    "time": "{{timenow}}",
}
_PLACEHOLDER = re.compile(r"\{\{[^{}]{0,80}\}\}")
_PAIR = re.compile(r'"([^"\\\n]{1,64})"\s*:\s*(\{\{[^{}\n]*\}\}|[^,}\]\n]*)')
_CODE = re.compile(r"[0-9A-Z]{6}")
# ASCII digits only (str.isdigit and Decimal take other scripts' digits, "_" and "+").
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_THOUSANDS = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")
_WHOLE_SHARES = re.compile(r"[0-9]+(?:\.0+)?")
# TradingView's words for an order's direction, plus the obvious synonyms.
_ACTIONS: Final = {
    "buy": Side.BUY,
    "long": Side.BUY,
    "매수": Side.BUY,
    "sell": Side.SELL,
    "short": Side.SELL,
    "매도": Side.SELL,
}
_ORDER_TYPES: Final = {kind.value: kind for kind in OrderType}


_FIELDS: Final = (
    "ticker", "exchange", "action", "quantity", "amount", "position", "order_type", "price", "id",
    "time", "max_lag", "comment", "account",
)


class _Object(dict[str, object]):
    """A decoded JSON object that remembers keys it saw more than once."""

    duplicates: frozenset[str] = frozenset()


def _object_hook(pairs: list[tuple[str, object]]) -> _Object:
    result = _Object(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        twice: set[str] = set()
        for key, _ in pairs:
            (twice if key in seen else seen).add(key)
        result.duplicates = frozenset(twice)
    return result


class _NonFinite:
    """`NaN`/`Infinity` in the body (Python's JSON accepts them); refused by field."""

    def __init__(self, name: str) -> None:
        self.name = name


_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _parse_int(text: str) -> int | Decimal:
    # `-0` keeps its sign (int() drops it), so a target position of -0 is refused.
    return Decimal(text) if text.startswith("-") and not text.strip("-0") else int(text)


def parse_alert(body: bytes, markets: Markets = DEFAULT_MARKETS) -> Alert:
    """Parse and validate one alert message. Raises only `AlertError`."""
    data = _decode(body)
    dupes = sorted(set(data.duplicates) & {*_FIELDS})
    if dupes:
        raise AlertError("given more than once", dupes[0])
    instrument = _ticker(_field(data, "ticker"), data.get("exchange"), markets)
    market = markets.of(instrument)
    currency = market.currency.code
    sizing_given = [name for name in SIZING_FIELDS if data.get(name) is not None]
    if not sizing_given:
        raise AlertError(
            f"one of them is required (quantity = shares, amount = {currency}, position = "
            "target shares held after the alert)",
            "quantity/amount/position",
        )
    if len(sizing_given) > 1:
        raise AlertError(
            "give exactly one of quantity, amount, position", ", ".join(sizing_given)
        )
    mode = sizing_given[0]
    raw_action = data.get("action")
    if raw_action is None and mode != "position":
        raise AlertError("required (buy or sell)", "action")
    action = None if raw_action is None else _action(raw_action)
    sizing = _sizing(mode, data[mode], action, currency)
    order_type = _order_type(data.get("order_type"))
    if order_type not in (OrderType.MARKET, OrderType.LIMIT):
        try:  # what the message alone shows; the environment is checked later
            market.check_order_type(_Environment.REAL, order_type, action or Side.SELL)
        except OrderTypeError as exc:
            raise AlertError(str(exc), "order_type") from None
    price = _price(data.get("price"), order_type, action, mode, market, currency)
    ignored_price = _ignored_price(data.get("price"), order_type)
    ident = _ident(data.get("id"))
    fired_at = _time(data.get("time"))
    max_lag = _max_lag(data.get("max_lag"), fired_at)
    comment = _comment(data.get("comment"))
    accounts = _accounts(data.get("account"))
    return Alert(
        symbol=instrument.symbol,
        market=instrument.market,
        exchange=instrument.exchange,
        action=action,
        sizing=sizing,
        order_type=order_type,
        price=price,
        ignored_price=ignored_price,
        id=ident,
        fired_at=fired_at,
        max_lag=max_lag,
        comment=comment,
        accounts=accounts,
    )


def _accounts(value: object) -> tuple[str, ...]:
    """`"isa"`, `"main, isa"` or `"all"` → lowercase names; absent → () (the default).
    Whether the user has such accounts is judged later, with their state."""
    if value is None:
        return ()
    if not isinstance(value, str):
        raise AlertError(
            f"must be a string (an account name, names separated by commas, or \"all\"), "
            f"not {_json_kind(value)}", "account",
        )
    pieces = [piece.strip() for piece in value.split(",")]
    names = [piece for piece in pieces if piece]
    if not names:
        raise AlertError("is empty: give an account name, names separated by commas, or "
                         "\"all\"", "account")
    if any(name.lower() == ALL_ACCOUNTS for name in names):
        if len(names) > 1:
            raise AlertError("\"all\" already means every account: give it alone",
                             "account")
        return (ALL_ACCOUNTS,)
    if len(names) > MAX_ACCOUNTS:
        raise AlertError(f"names more than {MAX_ACCOUNTS} accounts", "account")
    found: list[str] = []
    for name in names:
        try:
            normal = normalize_account_name(name)
        except AccountNameError as exc:
            raise AlertError(str(exc), "account") from None
        if normal not in found:
            found.append(normal)
    return tuple(found)


def _decode(body: bytes) -> _Object:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AlertError("body is not UTF-8 text") from None
    if not text.strip():
        raise AlertError(f"body is empty; the alert message must be a JSON object like {_EXAMPLE}")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_hook,
            parse_float=Decimal,
            parse_int=_parse_int,
            parse_constant=_NonFinite,
        )
    except json.JSONDecodeError as exc:
        unquoted = _unquoted_field(text)
        if unquoted is not None:
            key, raw = unquoted
            example = _PLACEHOLDER_FOR.get(key, "...")
            raise AlertError(
                f"the value {_shorten(raw)} is not quoted, so the body is not valid JSON. "
                "TradingView placeholders must be quoted in the alert message, e.g. "
                f'"{key}": "{example}"',
                _shorten(key, 40),
            ) from None
        raise AlertError(
            f"body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            f"expected an object like {_EXAMPLE}"
        ) from None
    except (ValueError, RecursionError) as exc:
        # int digit limits, NaN/Infinity, absurd nesting
        reason = "a number has too many digits" if isinstance(exc, ValueError) else (
            "nested too deeply"
        )
        raise AlertError(f"body is not usable JSON: {reason}") from None
    if not isinstance(value, _Object):
        raise AlertError(
            f"body must be a JSON object, not {_json_kind(value)}; e.g. {_EXAMPLE}"
        )
    return value


def _unquoted_field(text: str) -> tuple[str, str] | None:
    """The first `"key": value` pair whose value is not JSON, e.g. `"ticker": 005930`."""
    for match in _PAIR.finditer(text):
        key, raw = match.group(1), match.group(2).strip()
        if not raw or raw[0] in '"[' or (raw[0] == "{" and not raw.startswith("{{")):
            continue
        try:
            json.loads(raw)
        except ValueError:
            return key, raw
    return None


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, _NonFinite):
        return value.name
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | Decimal):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _field(data: _Object, name: str) -> object:
    value = data.get(name)
    if value is None:
        raise AlertError("required", name)
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise AlertError(f"must be a string, not {_json_kind(value)}", name)
    placeholder = _PLACEHOLDER.search(value)
    if placeholder is not None:
        raise AlertError(
            f"{_shorten(placeholder.group(0), 60)} was sent as is: TradingView fills "
            "placeholders only when a real alert fires (a test message, or a strategy "
            "placeholder in an indicator alert, sends it literally)",
            name,
        )
    if _UNSTORABLE.search(value):
        raise AlertError("contains a NUL or an unpaired surrogate character", name)
    return value.strip()


def _ticker(value: object, exchange: object, markets: Markets) -> Instrument:
    if isinstance(value, int) and not isinstance(value, bool) and 100_000 <= value <= 999_999:
        value = str(value)
    raw = _text(value, "ticker")
    where = None if exchange is None else _text(exchange, "exchange")
    try:
        return markets.parse(raw, where)
    except SymbolError as exc:
        raise AlertError(_shorten(exc.message, 200), exc.field) from None


def _action(value: object) -> Side:
    raw = _text(value, "action")
    side = _ACTIONS.get(raw.lower())
    if side is None:
        raise AlertError(f"{_shorten(raw)!r} is not buy or sell", "action")
    return side


def _number(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise AlertError(f"must be a number, not {_json_kind(value)}", name)
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    else:
        text = _text(value, name)
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        if len(text) > 64 or not _PLAIN_NUMBER.fullmatch(text):
            raise AlertError(f"{_shorten(text)!r} is not a number", name)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise AlertError(f"{_shorten(text)!r} is not a number", name) from None
    if not number.is_finite():
        raise AlertError("must be a finite number", name)
    if number and number.adjusted() > 18:
        raise AlertError("too large", name)
    return number


def _tidy(number: Decimal) -> Decimal:
    """`50`, not `5E+1`; `12.5`, not `12.50`."""
    if number == number.to_integral_value():
        return Decimal(int(number))
    return number.normalize()


def _floor(number: Decimal) -> int:
    return int(number.to_integral_value(ROUND_FLOOR))


def _sizing(mode: str, value: object, action: Side | None, currency: str) -> Sizing:
    if mode == "quantity":
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "all" or text.endswith("%"):
                if action is not Side.SELL:
                    raise AlertError(f"{value.strip()!r} is only for sells", "quantity")
                if text == "all":
                    return SellAll()
                percent = _number(text[:-1], "quantity")
                if not 0 < percent <= 100:
                    raise AlertError("a percentage must be above 0% and at most 100%", "quantity")
                return SellPercent(_tidy(percent))
        shares = _floor(_number(value, "quantity"))
        if shares < 1:
            raise AlertError("below 1 share after rounding down", "quantity")
        if shares > MAX_SHARES:
            raise AlertError(f"more than {MAX_SHARES:,} shares", "quantity")
        return Quantity(shares)
    if mode == "amount":
        money = _number(value, "amount")
        if money <= 0:
            raise AlertError(f"must be above 0 {currency}", "amount")
        if money > MAX_AMOUNT:
            raise AlertError(f"more than {MAX_AMOUNT:,} {currency}", "amount")
        return Amount(_tidy(money))
    shares = _target_shares(value)
    if shares > MAX_SHARES:
        raise AlertError(f"more than {MAX_SHARES:,} shares", "position")
    return Position(shares)


def _target_shares(value: object) -> int:
    """A target position is a plain whole number of shares, never rounded: "0.5", "-0" or
    "1e-400" would floor to 0 and sell the whole holding."""
    whole = "must be a whole number of shares like 10 (the target holding)"
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise AlertError(f"must be a number, not {_json_kind(value)}", "position")
    if isinstance(value, str):
        text = _text(value, "position")
        if text.startswith("-") and _PLAIN_NUMBER.fullmatch(text):
            raise AlertError("must be 0 or more (short positions cannot be held)", "position")
        if len(text) > 24 or not _WHOLE_SHARES.fullmatch(text):
            raise AlertError(f"{_shorten(text)!r}: {whole}", "position")
        return int(Decimal(text))
    number = Decimal(value)
    if number.is_signed():
        raise AlertError("must be 0 or more (short positions cannot be held)", "position")
    if not number.is_finite() or number != number.to_integral_value():
        raise AlertError(whole, "position")
    if number.adjusted() > 18:
        raise AlertError("too large", "position")
    return int(number)


def _order_type(value: object) -> OrderType:
    if value is None:
        return OrderType.MARKET
    raw = _text(value, "order_type")
    order_type = _ORDER_TYPES.get(raw.lower())
    if order_type is None:
        raise AlertError(
            f"{_shorten(raw)!r} is not market, limit, moo, loo, moc or loc", "order_type"
        )
    return order_type


def _price(
    value: object,
    order_type: OrderType,
    action: Side | None,
    mode: str,
    market: Market,
    currency: str,
) -> Decimal | None:
    if not order_type.has_price:
        return None  # a price sent with a market order is informational only
    if value is None:
        raise AlertError(f"required for a {order_type.value} order", "price")
    price = _number(value, "price")
    if price <= 0:
        raise AlertError("must be above 0", "price")
    if price > MAX_PRICE:
        raise AlertError(f"above {MAX_PRICE:,} {currency}", "price")
    if mode == "position":
        return price
    return market.round_price(price, action or Side.SELL)


def _ignored_price(value: object, order_type: OrderType) -> str | None:
    """A market order's price, shown as sent (shortened) in the notice that ignores it."""
    if order_type is not OrderType.MARKET or value is None or isinstance(value, _NonFinite):
        return None
    text = str(value).strip()
    return _shorten(_UNSTORABLE.sub("", text), 24) or None


def _ident(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    ident = _text(value, "id")
    if len(ident) > MAX_ID_LENGTH:
        raise AlertError(f"longer than {MAX_ID_LENGTH} characters", "id")
    return ident or None


_MIN_TIME: Final = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TIME: Final = datetime(2100, 1, 1, tzinfo=UTC)


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        seconds = _number(value, "time")
        if seconds > 10**11:  # epoch milliseconds ({{time}}-style)
            seconds /= 1000
        if not 946_684_800 <= seconds < 4_102_444_800:
            raise AlertError("epoch seconds out of range", "time")
        return datetime.fromtimestamp(float(seconds), UTC)
    raw = _text(value, "time")
    try:
        parsed = datetime.fromisoformat(raw) if len(raw) <= 64 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise AlertError(
            f"{_shorten(raw)!r} is not an ISO 8601 time like 2024-01-02T03:04:05Z "
            "({{timenow}})",
            "time",
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # {{timenow}} is UTC
    if not 2000 <= parsed.year < 2100:
        raise AlertError("out of range", "time")
    return parsed.astimezone(UTC)


def _max_lag(value: object, fired_at: datetime | None) -> float | None:
    if value is None:
        return None
    seconds = _number(value, "max_lag")
    if seconds <= 0:
        raise AlertError("must be above 0 seconds", "max_lag")
    if seconds > MAX_LAG_SECONDS:
        raise AlertError(f"more than {MAX_LAG_SECONDS} seconds", "max_lag")
    if fired_at is None:
        raise AlertError('needs "time" ({{timenow}}) to measure the lag from', "max_lag")
    return float(seconds)


def _comment(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise AlertError(f"must be a string, not {_json_kind(value)}", "comment")
    if len(value) > MAX_COMMENT_LENGTH:
        raise AlertError(f"longer than {MAX_COMMENT_LENGTH} characters", "comment")
    if _UNSTORABLE.search(value):
        raise AlertError("contains a NUL or an unpaired surrogate character", "comment")
    return value.strip() or None
