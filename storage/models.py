"""The tables. Secrets live only in `*_enc` columns (see `storage.crypto`).

Constraints are named explicitly so Alembic's batch mode can alter them on SQLite.
Everything outside `storage/` sees the records of `storage.records`, never these rows.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from storage.types import BigIntId, Money, UtcDateTime


def _user_fk(table: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column[int]:
    return Column(
        "user_id",
        BigInteger,
        ForeignKey("users.id", ondelete=ondelete, name=f"fk_{table}_user_id"),
        nullable=nullable,
    )


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("telegram_id", name="uq_users_telegram_id"),
        UniqueConstraint("webhook_token_hash", name="uq_users_webhook_token_hash"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    telegram_id: int = Field(sa_type=BigInteger)
    chat_id: int = Field(sa_type=BigInteger)
    language: str = Field(default="ko", max_length=2)
    active_environment: str = Field(default="paper", max_length=8)
    paused: bool = Field(default=False)
    # SHA-256 of the webhook token, for lookups; the token itself only encrypted.
    webhook_token_hash: str = Field(max_length=64)
    webhook_token_enc: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    # Telegram @username, lowercased, as last seen by the bot: the dashboard's browser
    # sign-in finds users by it (Telegram tells bots usernames only of users who wrote).
    username: str | None = Field(default=None, max_length=32, index=True)


def _account_fk(table: str, *, primary_key: bool = False) -> Column[int]:
    return Column(
        "account_id",
        BigInteger,
        ForeignKey("accounts.id", ondelete="CASCADE", name=f"fk_{table}_account_id"),
        nullable=False,
        primary_key=primary_key,
    )


class AccountRow(SQLModel, table=True):
    """A named set of KIS keys of one user (SPEC section 16), with its own active
    environment; exactly one account of each user is the default."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_accounts_user_name"),
        # At most one default per user (storage keeps exactly one).
        Index(
            "uq_accounts_user_default", "user_id", unique=True,
            sqlite_where=text("is_default"), postgresql_where=text("is_default"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("accounts"))
    name: str = Field(max_length=16)  # lowercase: names are case-insensitive
    active_environment: str = Field(default="paper", max_length=8)
    is_default: bool = Field(default=False)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class KeySet(SQLModel, table=True):
    __tablename__ = "key_sets"
    __table_args__ = (
        UniqueConstraint(
            "account_id", "environment", name="uq_key_sets_account_environment"
        ),
        Index("ix_key_sets_user", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("key_sets"))
    account_id: int = Field(
        sa_column=_account_fk("key_sets")
    )
    # Secrets sealed with the account in their associated data; False: a set saved
    # before accounts existed, sealed with its user and environment only.
    account_bound: bool = Field(default=True)
    environment: str = Field(max_length=8)
    app_key_enc: bytes = Field(sa_type=LargeBinary)
    app_key_hash: str = Field(max_length=64, index=True)
    app_secret_enc: bytes = Field(sa_type=LargeBinary)
    cano: str = Field(max_length=16)
    product_code: str = Field(max_length=4)
    hts_id: str = Field(max_length=64)
    validated: bool = Field(default=False)
    check_results: dict[str, object] | None = Field(default=None, sa_type=JSON)
    checked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class KisCredential(SQLModel, table=True):
    __tablename__ = "kis_credentials"
    __table_args__ = (
        UniqueConstraint(
            "kind", "app_key_hash", "environment", name="uq_kis_credentials_identity"
        ),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    kind: str = Field(max_length=16)
    app_key_hash: str = Field(max_length=64)
    environment: str = Field(max_length=8)
    value_enc: bytes = Field(sa_type=LargeBinary)
    issued_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_user_idempotency", "user_id", "idempotency_key", "received_at"),
        Index("ix_alerts_user_body", "user_id", "body_hash", "received_at"),
        Index("ix_alerts_status", "status"),
        Index("ix_alerts_status_lease", "status", "lease"),
        Index("ix_alerts_parent", "parent_id"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("alerts"))
    # The account this row's order goes to (None: no such account, refused). A message
    # for several accounts is one row that was received (`parent_id` None, status
    # `fanned_out`) and one row per account with `parent_id` naming it. History keeps
    # the ids of deleted accounts (no foreign key: rows of a deleted account stay).
    account_id: int | None = Field(default=None, sa_type=BigInteger)
    parent_id: int | None = Field(default=None, sa_type=BigInteger)
    received_at: datetime = Field(sa_type=UtcDateTime)
    raw_body: str = Field(sa_type=Text)
    parsed: dict[str, object] | None = Field(default=None, sa_type=JSON)
    idempotency_key: str | None = Field(default=None, max_length=255)
    body_hash: str = Field(max_length=64)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, sa_type=Text)
    # The reason as the bot's catalogue key and its figures (rendered in the user's
    # language); `reason` keeps the English text, all that rows before 0003 have.
    reason_key: str | None = Field(default=None, max_length=40)
    reason_params: dict[str, str] | None = Field(default=None, sa_type=JSON)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    # Several instances: the lease of the KIS key whose owner acts on it (None: any
    # instance, e.g. no keys), and who took it under which epoch of that lease.
    lease: str | None = Field(default=None, max_length=160)
    claimed_by: str | None = Field(default=None, max_length=96)
    claim_epoch: int | None = Field(default=None, sa_type=BigInteger)


class Order(SQLModel, table=True):
    __tablename__ = "orders"
    __table_args__ = (
        # One order per alert: the database's guarantee that an alert is never sent twice.
        UniqueConstraint("alert_id", name="uq_orders_alert_id"),
        Index("ix_orders_user_order_no", "user_id", "order_no"),
        Index("ix_orders_status", "status"),
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ix_orders_account_order_no", "account_id", "order_no"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    alert_id: int = Field(
        sa_column=Column(
            "alert_id",
            BigInteger,
            ForeignKey("alerts.id", ondelete="CASCADE", name="fk_orders_alert_id"),
            nullable=False,
        )
    )
    user_id: int = Field(sa_column=_user_fk("orders"))
    account_id: int | None = Field(default=None, sa_type=BigInteger)  # as on alerts
    environment: str = Field(max_length=8)
    market: str = Field(default="KRX", max_length=8)
    exchange: str = Field(default="KRX", max_length=8)
    currency: str = Field(default="KRW", max_length=3)
    symbol: str = Field(max_length=12)
    name: str | None = Field(default=None, max_length=100)
    side: str = Field(max_length=4)
    order_type: str = Field(max_length=8)
    quantity: int = Field(sa_type=BigInteger)
    price: Decimal | None = Field(default=None, sa_type=Money)
    order_no: str | None = Field(default=None, max_length=32)
    branch: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=20)
    reason: str | None = Field(default=None, sa_type=Text)
    reason_key: str | None = Field(default=None, max_length=40)
    reason_params: dict[str, str] | None = Field(default=None, sa_type=JSON)
    msg_cd: str | None = Field(default=None, max_length=16)
    # filled_* = what the user sees: the larger of the fill notices' sum (notice_*) and
    # what KIS's daily executions last showed (settled_qty), so neither counts twice.
    filled_qty: int = Field(default=0, sa_type=BigInteger)
    filled_amount: Decimal = Field(default=Decimal(0), sa_type=Money)
    notice_qty: int = Field(default=0, sa_type=BigInteger)
    notice_amount: Decimal = Field(default=Decimal(0), sa_type=Money)
    settled_qty: int = Field(default=0, sa_type=BigInteger)
    created_at: datetime = Field(sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Fill(SQLModel, table=True):
    __tablename__ = "fills"
    __table_args__ = (
        # A notice KIS repeats (reconnects, resends) is stored once.
        UniqueConstraint("user_id", "notice_key", name="uq_fills_user_notice"),
        Index("ix_fills_order", "order_id"),
        Index("ix_fills_user_order_no", "user_id", "order_no"),
        Index("ix_fills_account_order_no", "account_id", "order_no"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("fills"))
    account_id: int | None = Field(default=None, sa_type=BigInteger)  # as on alerts
    order_id: int | None = Field(
        default=None,
        sa_column=Column(
            "order_id",
            BigInteger,
            ForeignKey("orders.id", ondelete="SET NULL", name="fk_fills_order_id"),
            nullable=True,
        ),
    )
    environment: str = Field(max_length=8)
    market: str = Field(default="KRX", max_length=8)
    currency: str = Field(default="KRW", max_length=3)
    order_no: str = Field(max_length=32)
    quantity: int = Field(sa_type=BigInteger)
    price: Decimal = Field(sa_type=Money)
    filled_at: datetime = Field(sa_type=UtcDateTime)
    notice_key: str = Field(max_length=128)
    created_at: datetime = Field(sa_type=UtcDateTime)


class OutboxItem(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int | None = Field(default=None, sa_column=_user_fk("outbox", nullable=True))
    chat_id: int = Field(sa_type=BigInteger)
    kind: str = Field(max_length=32)
    payload: dict[str, object] = Field(sa_type=JSON)
    dedupe_key: str = Field(max_length=255)
    status: str = Field(max_length=8)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_type=UtcDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # Several instances: the Telegram lease holder that took it to send, and under which
    # epoch of that lease.
    claimed_by: str | None = Field(default=None, max_length=96)
    claim_epoch: int | None = Field(default=None, sa_type=BigInteger)


class TwoFactorCode(SQLModel, table=True):
    __tablename__ = "two_factor_codes"
    __table_args__ = (Index("ix_two_factor_codes_user_purpose", "user_id", "purpose"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("two_factor_codes"))
    purpose: str = Field(max_length=32)
    code_hash: str = Field(max_length=64)
    salt: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    attempts: int = Field(default=0)
    used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class TotpSecret(SQLModel, table=True):
    """A user's authenticator-app secret (RFC 6238), encrypted; one per user."""

    __tablename__ = "totp_secrets"
    __table_args__ = (UniqueConstraint("user_id", name="uq_totp_secrets_user_id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("totp_secrets"))
    secret_enc: bytes = Field(sa_type=LargeBinary)
    confirmed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # The newest 30-s time step a code was accepted for: no code counts twice.
    last_step: int = Field(default=0, sa_type=BigInteger)
    failures: int = Field(default=0)
    locked_until: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_user_at", "user_id", "at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int | None = Field(
        default=None, sa_column=_user_fk("audit_log", nullable=True, ondelete="SET NULL")
    )
    action: str = Field(max_length=64)
    detail: dict[str, object] | None = Field(default=None, sa_type=JSON)
    at: datetime = Field(sa_type=UtcDateTime)


class Instance(SQLModel, table=True):
    """A running `moahook serve` process (one row per start: `id` is unique per start)."""

    __tablename__ = "instances"

    id: str = Field(primary_key=True, max_length=96)
    name: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=UtcDateTime)
    heartbeat_at: datetime = Field(sa_type=UtcDateTime)
    draining: bool = Field(default=False)


class Lease(SQLModel, table=True):
    """Who owns a piece of work (a KIS app key, the Telegram side) until `expires_at`.

    `epoch` grows whenever the lease changes hands: work claimed under an older epoch
    belongs to a holder that lost it."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=160)
    holder: str | None = Field(default=None, max_length=96)
    epoch: int = Field(default=0, sa_type=BigInteger)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    acquired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class FillSession(SQLModel, table=True):
    """An account's fill-notice connection as its KIS key's owner last saw it, so that
    any instance (the bot's `/status`, a key check) can tell."""

    __tablename__ = "fill_sessions"

    account_id: int = Field(
        sa_column=_account_fk("fill_sessions", primary_key=True)
    )
    user_id: int = Field(sa_column=_user_fk("fill_sessions"))
    environment: str = Field(max_length=8)
    hts_id: str = Field(max_length=64)
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, sa_type=Text)
    since: datetime = Field(sa_type=UtcDateTime)
    instance: str = Field(max_length=96)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class Conversation(SQLModel, table=True):
    """The bot's conversation state (aiogram FSM) of one chat; data encrypted."""

    __tablename__ = "conversations"

    key: str = Field(primary_key=True, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    data_enc: bytes | None = Field(default=None, sa_type=LargeBinary)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class WebSession(SQLModel, table=True):
    """A dashboard session; only the SHA-256 of its id is stored."""

    __tablename__ = "web_sessions"
    __table_args__ = (
        UniqueConstraint("id_hash", name="uq_web_sessions_id_hash"),
        Index("ix_web_sessions_expires", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    user_id: int = Field(sa_column=_user_fk("web_sessions"))
    id_hash: str = Field(max_length=64)
    via: str = Field(max_length=16)  # "telegram" (initData) or "code" (browser sign-in)
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)


class RateBucket(SQLModel, table=True):
    """Hits per bucket per fixed window (sign-in attempts per IP, per user)."""

    __tablename__ = "rate_buckets"
    __table_args__ = (
        UniqueConstraint("bucket", "window_start", name="uq_rate_buckets_bucket_window"),
        Index("ix_rate_buckets_window", "window_start"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    bucket: str = Field(max_length=96)
    window_start: datetime = Field(sa_type=UtcDateTime)
    hits: int = Field(default=0)


# --- SPEC section 15: options and risk limits, confirmations, open-order cancels,
# reservation orders, the cost of what a sell sold ----------------------------------------


def _alert_fk(table: str, *, primary_key: bool = False) -> Column[int]:
    return Column(
        "alert_id",
        BigInteger,
        ForeignKey("alerts.id", ondelete="CASCADE", name=f"fk_{table}_alert_id"),
        nullable=False,
        primary_key=primary_key,
    )


class UserOptionsRow(SQLModel, table=True):
    """A user's options; no row = everything off, no limits."""

    __tablename__ = "user_options"

    user_id: int = Field(
        sa_column=Column(
            "user_id",
            BigInteger,
            ForeignKey("users.id", ondelete="CASCADE", name="fk_user_options_user_id"),
            primary_key=True,
        )
    )
    confirm_seconds: int | None = Field(default=None)
    digest: bool = Field(default=False)
    afterhours_reserve: bool = Field(default=False)
    limit_order_krw: Decimal | None = Field(default=None, sa_type=Money)
    limit_day_krw: Decimal | None = Field(default=None, sa_type=Money)
    limit_order_usd: Decimal | None = Field(default=None, sa_type=Money)
    limit_day_usd: Decimal | None = Field(default=None, sa_type=Money)
    limit_orders: int | None = Field(default=None)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class LimitUsage(SQLModel, table=True):
    """What an account's orders used of the day's limits, per market day (a user's
    limits apply to each of their accounts on its own)."""

    __tablename__ = "limit_usage"

    account_id: int = Field(
        sa_column=_account_fk("limit_usage", primary_key=True)
    )
    user_id: int = Field(sa_column=_user_fk("limit_usage"))
    market: str = Field(primary_key=True, max_length=8)
    day: str = Field(primary_key=True, max_length=10)  # the market's date, YYYY-MM-DD
    orders: int = Field(default=0)
    bought: Decimal = Field(default=Decimal(0), sa_type=Money)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class LimitHold(SQLModel, table=True):
    """One alert's share of `limit_usage`, given back once if its order is not placed."""

    __tablename__ = "limit_holds"

    alert_id: int = Field(sa_column=_alert_fk("limit_holds", primary_key=True))
    user_id: int = Field(sa_column=_user_fk("limit_holds"))
    account_id: int | None = Field(default=None, sa_type=BigInteger)
    market: str = Field(max_length=8)
    day: str = Field(max_length=10)
    amount: Decimal = Field(default=Decimal(0), sa_type=Money)
    created_at: datetime = Field(sa_type=UtcDateTime)
    released_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Confirmation(SQLModel, table=True):
    """Confirm mode: an alert waiting for the user's ✅ / ❌ in the chat."""

    __tablename__ = "confirmations"
    __table_args__ = (
        UniqueConstraint("alert_id", name="uq_confirmations_alert_id"),
        Index("ix_confirmations_due", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    alert_id: int = Field(sa_column=_alert_fk("confirmations"))
    user_id: int = Field(sa_column=_user_fk("confirmations"))
    chat_id: int = Field(sa_type=BigInteger)
    status: str = Field(max_length=12)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    message_id: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = Field(sa_type=UtcDateTime)


class OrderCancel(SQLModel, table=True):
    """A cancel of an open order asked for in the chat: one row, one request to KIS."""

    __tablename__ = "order_cancels"

    order_id: int = Field(
        sa_column=Column(
            "order_id",
            BigInteger,
            ForeignKey("orders.id", ondelete="CASCADE", name="fk_order_cancels_order_id"),
            primary_key=True,
        )
    )
    user_id: int = Field(sa_column=_user_fk("order_cancels"))
    status: str = Field(max_length=12)
    reason: str | None = Field(default=None, sa_type=Text)
    requested_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ReservedOrder(SQLModel, table=True):
    """A KIS reservation order (예약주문) made for an alert outside KRX hours."""

    __tablename__ = "reserved_orders"
    __table_args__ = (
        UniqueConstraint("alert_id", name="uq_reserved_orders_alert_id"),
        Index("ix_reserved_orders_user_status", "user_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True, sa_type=BigIntId)
    alert_id: int = Field(sa_column=_alert_fk("reserved_orders"))
    user_id: int = Field(sa_column=_user_fk("reserved_orders"))
    account_id: int | None = Field(default=None, sa_type=BigInteger)
    environment: str = Field(max_length=8)
    symbol: str = Field(max_length=12)
    name: str | None = Field(default=None, max_length=100)
    side: str = Field(max_length=4)
    order_type: str = Field(max_length=8)
    quantity: int = Field(sa_type=BigInteger)
    price: Decimal | None = Field(default=None, sa_type=Money)
    entry_date: str = Field(max_length=8)  # KST YYYYMMDD the reservation was entered
    seq: str | None = Field(default=None, max_length=32)  # KIS's RSVN_ORD_SEQ
    status: str = Field(max_length=16)
    reason: str | None = Field(default=None, sa_type=Text)
    order_no: str | None = Field(default=None, max_length=32)
    filled_qty: int = Field(default=0, sa_type=BigInteger)
    filled_amount: Decimal = Field(default=Decimal(0), sa_type=Money)
    reported_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class SaleCost(SQLModel, table=True):
    """The average purchase price KIS reported when a sell was sized: what it sold at
    cost, for P&L where KIS has no realised-P&L inquiry (paper, US)."""

    __tablename__ = "sale_costs"

    alert_id: int = Field(sa_column=_alert_fk("sale_costs", primary_key=True))
    avg_price: Decimal = Field(sa_type=Money)
    currency: str = Field(max_length=3)


TABLES = (
    User,
    AccountRow,
    KeySet,
    KisCredential,
    Alert,
    Order,
    Fill,
    OutboxItem,
    TwoFactorCode,
    TotpSecret,
    AuditEntry,
    Instance,
    Lease,
    FillSession,
    Conversation,
    WebSession,
    RateBucket,
    UserOptionsRow,
    LimitUsage,
    LimitHold,
    Confirmation,
    OrderCancel,
    ReservedOrder,
    SaleCost,
)
