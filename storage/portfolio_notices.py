"""The chat messages of the portfolio features and their JSON form in the outbox.

Like `storage.notices`: the pipeline and the bot's jobs build one of these and queue
`to_payload()`; the notifier reads it back with `card_from_payload` and the bot formats
it in the user's language. Money travels as decimal strings in the market's currency.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

from storage.notices import NoticeError
from storage.portfolio_records import ReservedOrderRecord


class CardKind(enum.StrEnum):
    CONFIRM_REQUEST = "confirm_request"  # ✅ Place / ❌ Skip
    CONFIRM_EXPIRED = "confirm_expired"
    DIGEST = "digest"
    RESERVATION = "reservation"  # a reservation order: placed, failed, or its result


@dataclass(frozen=True, slots=True)
class OrderSubject:
    """What an order is about, as the chat shows it."""

    env: str = ""
    symbol: str = ""
    name: str = ""
    side: str = ""  # "" in position mode until sized
    sizing: str = ""  # "quantity" | "amount" | "all" | "percent" | "position"
    value: str = ""  # shares, money, percent or target, as text
    order_type: str = "market"
    price: str = ""  # the limit price, when there is one
    market: str = "KRX"
    exchange: str = ""
    currency: str = "KRW"
    comment: str = ""
    account: str = ""  # the account's name, when the user has several


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    kind: ClassVar[CardKind] = CardKind.CONFIRM_REQUEST
    confirmation_id: int
    seconds: int
    subject: OrderSubject


@dataclass(frozen=True, slots=True)
class ConfirmExpired:
    kind: ClassVar[CardKind] = CardKind.CONFIRM_EXPIRED
    confirmation_id: int
    subject: OrderSubject


@dataclass(frozen=True, slots=True)
class DigestFill:
    symbol: str
    name: str
    side: str
    quantity: int
    price: str  # average fill price
    exchange: str = ""


@dataclass(frozen=True, slots=True)
class Digest:
    """One market day of one account: orders by outcome, fills, refusals, P&L."""

    kind: ClassVar[CardKind] = CardKind.DIGEST
    env: str
    market: str
    day: str  # the market's date, YYYY-MM-DD
    currency: str
    orders: int
    outcomes: dict[str, int]  # order status -> count
    fills: list[DigestFill]
    refused: int
    reasons: list[str]  # the most frequent refusal reasons, most frequent first
    pnl: str  # realised P&L, or "" when it could not be worked out
    pnl_source: str  # "kis" | "computed" | "unavailable"
    bought: str = "0"
    sold: str = "0"
    account: str = ""  # the account's name, when the user has several (one card each)


class ReservationEvent(enum.StrEnum):
    PLACED = "placed"
    FAILED = "failed"
    UNKNOWN = "unknown"
    EXECUTED = "executed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class ReservationCard:
    kind: ClassVar[CardKind] = CardKind.RESERVATION
    event: ReservationEvent
    subject: OrderSubject
    quantity: int = 0
    opens: str = ""  # when KIS sends it (KST), for PLACED
    reason: str = ""
    filled: int = 0
    avg_price: str = ""
    order_no: str = ""


Card = ConfirmRequest | ConfirmExpired | Digest | ReservationCard
_CARDS: Final[dict[str, type[Card]]] = {
    cls.kind.value: cls for cls in (ConfirmRequest, ConfirmExpired, Digest, ReservationCard)
}
CARD_KINDS: Final = frozenset(_CARDS)


def card_payload(card: Card) -> dict[str, object]:
    payload = dataclasses.asdict(card)
    payload["kind"] = card.kind.value
    return _plain(payload)  # type: ignore[return-value]  # asdict gives a dict


def card_from_payload(payload: Mapping[str, object]) -> Card:
    """The card in an outbox payload; `NoticeError` when it is not one."""
    cls = _CARDS.get(str(payload.get("kind", "")))
    if cls is None:
        raise NoticeError("unknown card kind")
    card = _build(cls, payload)
    assert isinstance(card, (ConfirmRequest, ConfirmExpired, Digest, ReservationCard))
    return card


def _plain(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type[object], data: object) -> object:
    if not isinstance(data, Mapping):
        raise NoticeError(f"{cls.__name__} is not an object")
    hints = typing.get_type_hints(cls)
    values: dict[str, object] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]  # dataclasses only
        if item.name not in data:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                raise NoticeError(f"{cls.__name__}.{item.name} is missing")
            continue
        values[item.name] = _convert(hints[item.name], data[item.name], item.name)
    return cls(**values)


def _convert(hint: object, value: object, name: str) -> object:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            raise NoticeError(f"{name} is not a known value") from None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise NoticeError(f"{name} is not a list")
        return [_convert(inner, v, name) for v in value]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise NoticeError(f"{name} is not an object")
        return {str(k): _convert(int, v, name) for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise NoticeError(f"{name} is not true/false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise NoticeError(f"{name} is not a whole number")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise NoticeError(f"{name} is not text")
        return value
    raise NoticeError(f"{name}: unsupported field type")


__all__ = [
    "CARD_KINDS",
    "Card",
    "CardKind",
    "ConfirmExpired",
    "ConfirmRequest",
    "Digest",
    "DigestFill",
    "OrderSubject",
    "ReservationCard",
    "ReservationEvent",
    "card_from_payload",
    "card_payload",
    "subject_from_alert",
    "subject_from_reservation",
]


def subject_from_alert(
    parsed: Mapping[str, object] | None, env: str, account: str = ""
) -> OrderSubject:
    """The subject of an alert as stored (`Alert.to_json()`): what its order is about
    (`account`: the account's name when the user has several)."""
    data = parsed or {}
    sizing = data.get("sizing")
    mode = value = ""
    if isinstance(sizing, Mapping):
        mode = str(sizing.get("mode") or "")
        raw = sizing.get("value")
        value = "" if raw is None else str(raw)
    market = str(data.get("market") or "KRX")
    exchange = str(data.get("exchange") or "")
    price = data.get("price")
    return OrderSubject(
        env=env,
        symbol=str(data.get("symbol") or ""),
        side=str(data.get("action") or ""),
        sizing=mode,
        value=value,
        order_type=str(data.get("order_type") or "market"),
        price="" if price is None else str(price),
        market=market,
        exchange="" if market == "KRX" else exchange,
        currency="KRW" if market == "KRX" else "USD",
        comment=str(data.get("comment") or "")[:200],
        account=account,
    )


def subject_from_reservation(record: ReservedOrderRecord, account: str = "") -> OrderSubject:
    """What a KIS reservation order is about, as the chat shows it."""
    return OrderSubject(
        env=record.environment.value, symbol=record.symbol, name=record.name or "",
        side=record.side, sizing="quantity", value=str(record.quantity),
        order_type=record.order_type,
        price="" if record.price is None else str(record.price), account=account,
    )
