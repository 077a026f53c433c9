"""The typed notices for a chat, and their JSON form in the outbox.

Both sides import this: the order pipeline and the fill-notice watchers build a
`Notice` and put
`notice.to_payload()` in storage's outbox; the notifier reads it back with
`Notice.from_payload` and formats it in the user's language (`bot.formatting`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation


class NoticeKind(enum.StrEnum):
    ORDER_ACCEPTED = "order_accepted"  # KIS took the order (order-cash answer or notice)
    ORDER_REFUSED = "order_refused"  # moahook's guards refused it before KIS
    ORDER_FAILED = "order_failed"  # the order-cash request was refused by KIS / failed
    ORDER_UNKNOWN = "order_unknown"  # no answer from KIS: checking whether it was placed
    ORDER_NOT_PLACED = "order_not_placed"  # checked with KIS: it was not placed
    ORDER_FILLED = "order_filled"  # a fill that completes the order
    ORDER_PARTIAL = "order_partial"  # a fill that leaves a remainder
    ORDER_REJECTED = "order_rejected"  # KIS's fill notice reports a refusal
    FILL_NOTICE_DOWN = "fill_notice_down"  # the user's fill-notice connection is lost
    FILL_NOTICE_UP = "fill_notice_up"  # and back


# reason_key of a fill notice built from KIS's daily executions (its notice was lost).
FROM_EXECUTIONS = "from_executions"
# reason_key of an "accepted" notice that is the verdict on an order of unknown outcome.
CHECKED_WITH_KIS = "checked_with_kis"


class NoticeError(ValueError):
    """An outbox payload that is not a notice (never carries the payload itself)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One message for one user; fields not relevant to `kind` keep their defaults.

    `reason_key` names a `reason.<key>` text in the catalogs (formatted with
    `reason_params`) so guard refusals read in the user's language; `reason` is the
    literal text otherwise (KIS's `msg1`, shown as KIS wrote it).
    """

    kind: NoticeKind
    env: str = ""  # "paper" | "real"
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    symbol: str = ""
    name: str = ""
    side: str = ""  # "buy" | "sell"
    quantity: int = 0  # ordered quantity, or this fill's quantity
    price: Decimal | None = None  # limit price, or this fill's price (in `currency`)
    order_type: str = "market"  # "market" | "limit" | "moo" | "loo" | "moc" | "loc"
    filled: int = 0  # cumulative filled quantity of the order
    ordered: int = 0  # order quantity
    reason: str = ""
    reason_key: str = ""
    reason_params: Mapping[str, str] = field(default_factory=dict)
    comment: str = ""
    order_no: str = ""
    market: str = "KRX"
    exchange: str = ""  # US: NASD | NYSE | AMEX
    currency: str = "KRW"
    marketable: bool = False  # a market order sent as a limit at this marketable price
    ignored_price: str = ""  # a price sent with a market order, not used
    account: str = ""  # the account's name, when the user has several (SPEC section 16)

    def to_payload(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "env": self.env,
            "at": self.at.astimezone(UTC).isoformat(),
            "symbol": self.symbol,
            "name": self.name,
            "side": self.side,
            "quantity": self.quantity,
            "price": None if self.price is None else str(self.price),
            "order_type": self.order_type,
            "filled": self.filled,
            "ordered": self.ordered,
            "reason": self.reason,
            "reason_key": self.reason_key,
            "reason_params": dict(self.reason_params),
            "comment": self.comment,
            "order_no": self.order_no,
            "market": self.market,
            "exchange": self.exchange,
            "currency": self.currency,
            "marketable": self.marketable,
            "ignored_price": self.ignored_price,
            **({"account": self.account} if self.account else {}),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> Notice:
        try:
            kind = NoticeKind(_str(payload, "kind"))
        except ValueError:
            raise NoticeError("unknown notice kind") from None
        at_text = _str(payload, "at")
        try:
            at = datetime.fromisoformat(at_text) if at_text else datetime.now(UTC)
        except ValueError:
            raise NoticeError("notice time is not ISO 8601") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        raw_params = payload.get("reason_params") or {}
        if not isinstance(raw_params, Mapping):
            raise NoticeError("reason_params is not an object")
        price = payload.get("price")
        return cls(
            kind=kind,
            env=_str(payload, "env"),
            at=at,
            symbol=_str(payload, "symbol"),
            name=_str(payload, "name"),
            side=_str(payload, "side"),
            quantity=_int(payload, "quantity"),
            price=None if price is None else _decimal(payload, "price"),
            order_type=_str(payload, "order_type") or "market",
            filled=_int(payload, "filled"),
            ordered=_int(payload, "ordered"),
            reason=_str(payload, "reason"),
            reason_key=_str(payload, "reason_key"),
            reason_params={str(k): str(v) for k, v in raw_params.items()},
            comment=_str(payload, "comment"),
            order_no=_str(payload, "order_no"),
            market=_str(payload, "market") or "KRX",
            exchange=_str(payload, "exchange"),
            currency=_str(payload, "currency") or "KRW",
            marketable=payload.get("marketable") is True,
            ignored_price=_str(payload, "ignored_price"),
            account=_str(payload, "account"),
        )


def _str(payload: Mapping[str, object], name: str) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise NoticeError(f"notice field {name} is not text")


def _int(payload: Mapping[str, object], name: str) -> int:
    value = payload.get(name)
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise NoticeError(f"notice field {name} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, (str, float)):
        try:
            return int(float(value))
        except ValueError:
            raise NoticeError(f"notice field {name} is not a number") from None
    raise NoticeError(f"notice field {name} is not a number")


def _decimal(payload: Mapping[str, object], name: str) -> Decimal:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise NoticeError(f"notice field {name} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise NoticeError(f"notice field {name} is not a number") from None
    if not number.is_finite():
        raise NoticeError(f"notice field {name} is not a number")
    return number


def notice_dedupe_key(
    kind: NoticeKind, user_id: int, env: str, order_no: str, account_id: int | None = None
) -> str:
    """The outbox dedupe key of a per-order notice.

    The pipeline (from the order-cash answer) and the fill-notice watcher (from KIS's
    acceptance notice) both report "order accepted"; with this shared key whichever
    comes first is queued and the other is dropped, so the user reads it once. KIS
    numbers each account's orders on its own: the account is part of the key.
    """
    base = f"{kind.value}:{user_id}:{env}:{order_no}"
    return base if account_id is None else f"{base}:{account_id}"
