"""What repositories hand out: frozen, detached, secrets wrapped in `Secret`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from kis.env import Environment
from kis.models import Account, AppCredentials
from kis.secret import Secret


class AlertStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # stored, not yet acted on
    PROCESSING = "processing"  # claimed by the order pipeline
    DONE = "done"  # an order was placed (its outcome lives on the order)
    REFUSED = "refused"  # a guard refused it; `reason` says which
    FAILED = "failed"  # something went wrong acting on it; `reason` says what
    DUPLICATE = "duplicate"  # a repeat of an earlier alert, dropped (kept for /log)
    AWAITING = "awaiting"  # confirm mode: waiting for the user's ✅ / ❌ in the chat
    # A message for several accounts: received once, acted on as one row per account
    # (each with `parent_id` naming this one).
    FANNED_OUT = "fanned_out"


OPEN_ALERT_STATUSES = (AlertStatus.ACCEPTED, AlertStatus.PROCESSING)


class OrderStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, not yet sent to KIS
    SENT = "sent"  # the order-cash request left; no answer yet
    UNKNOWN = "unknown"  # sent, the answer was lost: reconcile before anything else
    ACCEPTED = "accepted"  # KIS gave an order number
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"  # KIS refused it
    FAILED = "failed"  # never reached KIS


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # given up on


class VerifyOutcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"  # `tries_left` more attempts allowed
    EXPIRED = "expired"
    VOID = "void"  # too many wrong tries; ask for a new code
    NONE = "none"  # no open code for this purpose (never issued, or already used)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an alert or an order ended as it did.

    `key` names the bot's `reason.<key>` text and `params` its figures, so the user reads
    it in their language; `text` is the English wording (logs, and the only form rows
    written before revision 0003 have)."""

    text: str
    key: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    telegram_id: int
    chat_id: int
    language: str
    active_environment: Environment
    paused: bool
    created_at: datetime
    username: str | None = None  # lowercased, without "@"; None until the bot saw one


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """A named set of a user's KIS keys (SPEC section 16) with its own active environment."""

    id: int
    user_id: int
    name: str  # lowercase
    active_environment: Environment
    is_default: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KeySetRecord:
    user_id: int
    environment: Environment
    app_key: Secret
    app_secret: Secret
    cano: str
    product_code: str
    hts_id: str
    validated: bool
    check_results: dict[str, object] | None
    checked_at: datetime | None
    updated_at: datetime
    account_id: int = 0  # the moahook account (`AccountRecord`) these keys belong to

    @property
    def account(self) -> str:
        """`12345678-01` form."""
        return f"{self.cano}-{self.product_code}"

    def kis_access(self) -> tuple[AppCredentials, Account]:
        """What KIS calls with these keys take: the app credentials and the account."""
        creds = AppCredentials(self.app_key.reveal(), self.app_secret, self.environment)
        return creds, Account(self.cano, self.product_code)


@dataclass(frozen=True, slots=True)
class ActiveKeySet:
    """An account, its user and the validated key set of its active environment."""

    user: UserRecord
    keys: KeySetRecord
    account: AccountRecord


@dataclass(frozen=True, slots=True)
class AcceptResult:
    alert_id: int
    duplicate: bool  # True: `alert_id` is the first alert's id, nothing new stored
    legs: tuple[int, ...] = ()  # a message for several accounts: each account's row


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    user_id: int
    received_at: datetime
    raw_body: str
    parsed: dict[str, object] | None
    idempotency_key: str | None
    status: AlertStatus
    reason: str | None
    updated_at: datetime
    reason_key: str | None = None
    reason_params: dict[str, str] | None = None
    lease: str | None = None  # several instances: the KIS key whose owner acts on it
    account_id: int | None = None  # the account its order goes to (None: unknown)
    parent_id: int | None = None  # one of several accounts' rows of this received alert

    def summary(self, max_chars: int = 60) -> str:
        """`buy 005930 quantity=3` from the parsed alert, or the clipped raw body."""
        parsed = self.parsed or {}
        parts = [str(parsed[k]) for k in ("action", "ticker", "symbol") if parsed.get(k)]
        for sizing in ("quantity", "amount", "position"):
            if parsed.get(sizing) is not None:
                parts.append(f"{sizing}={parsed[sizing]}")
        if parts:
            return " ".join(parts)
        raw = " ".join(self.raw_body.split())
        return raw[:max_chars] + ("…" if len(raw) > max_chars else "")


@dataclass(frozen=True, slots=True)
class OrderRecord:
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
    order_no: str | None
    branch: str | None
    status: OrderStatus
    reason: str | None
    msg_cd: str | None
    filled_qty: int
    filled_amount: Decimal
    created_at: datetime
    sent_at: datetime | None
    updated_at: datetime
    market: str = "KRX"
    exchange: str = "KRX"
    currency: str = "KRW"
    notice_qty: int = 0  # the sum of its fill notices
    notice_amount: Decimal = Decimal(0)
    settled_qty: int = 0  # filled quantity KIS's daily executions last showed
    reason_key: str | None = None
    reason_params: dict[str, str] | None = None
    account_id: int | None = None

    @property
    def avg_fill_price(self) -> Decimal | None:
        if self.filled_qty <= 0:
            return None
        return Decimal(self.filled_amount) / Decimal(self.filled_qty)


@dataclass(frozen=True, slots=True)
class FillRecord:
    id: int
    user_id: int
    order_id: int | None
    order_no: str
    quantity: int
    price: Decimal
    filled_at: datetime
    notice_key: str
    market: str = "KRX"
    currency: str = "KRW"
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class FillResult:
    new: bool  # False: this notice was stored before, nothing changed
    order: OrderRecord | None  # the order it belongs to, after the update (if known)

    @property
    def counted(self) -> bool:
        """The fill raised its order's filled quantity: False when KIS's daily
        executions had already shown it (settled before its notice arrived)."""
        order = self.order
        return self.new and (order is None or order.notice_qty > order.settled_qty)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    user_id: int | None
    chat_id: int
    kind: str
    payload: dict[str, object]
    dedupe_key: str
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    outcome: VerifyOutcome
    tries_left: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome is VerifyOutcome.OK


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    user_id: int | None
    action: str
    detail: dict[str, object] = field(default_factory=dict)
    at: datetime | None = None
