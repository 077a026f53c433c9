"""Records of the portfolio features (SPEC section 15): confirmations, limit usage,
open-order cancels and KIS reservation orders. Frozen and detached, like
`storage.records`."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from kis.env import Environment
from storage.options import LimitName
from storage.records import OutboxMessage


class ConfirmationStatus(enum.StrEnum):
    PENDING = "pending"  # the question is in the chat
    CONFIRMED = "confirmed"  # ✅: the pipeline places the order (sized afresh)
    SKIPPED = "skipped"  # ❌
    EXPIRED = "expired"  # no answer in time


@dataclass(frozen=True, slots=True)
class ConfirmationRecord:
    id: int
    alert_id: int
    user_id: int
    chat_id: int
    status: ConfirmationStatus
    expires_at: datetime
    decided_at: datetime | None
    message_id: int | None
    created_at: datetime


class DecideOutcome(enum.Enum):
    DECIDED = enum.auto()  # this press decided it
    ALREADY = enum.auto()  # decided before (another press, another device)
    EXPIRED = enum.auto()  # too late: it expired (now, or before)
    UNKNOWN = enum.auto()  # no such confirmation for this user


@dataclass(frozen=True, slots=True)
class DecideResult:
    outcome: DecideOutcome
    record: ConfirmationRecord | None
    queued: OutboxMessage | None = None  # the expiry notice, when this press expired it


@dataclass(frozen=True, slots=True)
class LimitUse:
    """What a market day's orders used: how many, and how much money bought."""

    orders: int = 0
    bought: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class HoldResult:
    """`limit` is None when the hold was taken; else the cap it would exceed."""

    limit: LimitName | None
    used: LimitUse


class CancelStatus(enum.StrEnum):
    REQUESTED = "requested"  # the cancel request may be on its way to KIS
    DONE = "done"  # KIS took the cancel
    REFUSED = "refused"  # KIS refused it (a new press may try again)
    UNKNOWN = "unknown"  # no answer: see /orders before trying again


class ReservationStatus(enum.StrEnum):
    PENDING = "pending"  # recorded; the request to KIS has not been answered
    RESERVED = "reserved"  # KIS took it (RSVN_ORD_SEQ); sent at the next open
    UNKNOWN = "unknown"  # no answer: reconciled with KIS's reservation list
    FAILED = "failed"  # never reached KIS, or KIS refused it
    CANCELLING = "cancelling"  # a cancel is on its way
    CANCELLED = "cancelled"
    EXECUTED = "executed"  # KIS sent it at the open (fills, if any, in `filled_qty`)
    REJECTED = "rejected"  # KIS refused it at the open


OPEN_RESERVATIONS = (
    ReservationStatus.PENDING, ReservationStatus.RESERVED, ReservationStatus.UNKNOWN,
    ReservationStatus.CANCELLING,
)


@dataclass(frozen=True, slots=True)
class ReservedOrderRecord:
    id: int
    alert_id: int
    user_id: int
    environment: Environment
    symbol: str
    name: str | None
    side: str
    order_type: str
    quantity: int
    price: Decimal | None
    entry_date: str
    seq: str | None
    status: ReservationStatus
    reason: str | None
    order_no: str | None
    filled_qty: int
    filled_amount: Decimal
    reported_at: datetime | None
    created_at: datetime
    updated_at: datetime
    account_id: int | None = None

    @property
    def entry_day(self) -> date:
        """The KST date it was entered (KIS lists reservations by date)."""
        raw = self.entry_date
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
