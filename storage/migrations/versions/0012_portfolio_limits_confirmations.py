"""Portfolio features (SPEC section 15): user options and risk limits with the day's
usage and each alert's hold on it, confirm-mode decisions, cancels of open orders asked
for in the chat, KIS reservation orders, and the cost basis of sells. New tables only:
existing rows are untouched (no row in `user_options` means everything off).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MONEY = sa.BigInteger  # storage.types.Money: ten-thousandths of the currency unit


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=f"fk_{table}_user_id", ondelete="CASCADE"
    )


def _alert_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["alert_id"], ["alerts.id"], name=f"fk_{table}_alert_id", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "user_options",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("confirm_seconds", sa.Integer(), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("afterhours_reserve", sa.Boolean(), nullable=False),
        sa.Column("limit_order_krw", _MONEY(), nullable=True),
        sa.Column("limit_day_krw", _MONEY(), nullable=True),
        sa.Column("limit_order_usd", _MONEY(), nullable=True),
        sa.Column("limit_day_usd", _MONEY(), nullable=True),
        sa.Column("limit_orders", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk("user_options"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "limit_usage",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("bought", _MONEY(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk("limit_usage"),
        sa.PrimaryKeyConstraint("user_id", "market", "day"),
    )
    op.create_table(
        "limit_holds",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("amount", _MONEY(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        _alert_fk("limit_holds"),
        _user_fk("limit_holds"),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_table(
        "confirmations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _alert_fk("confirmations"),
        _user_fk("confirmations"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", name="uq_confirmations_alert_id"),
    )
    with op.batch_alter_table("confirmations") as batch:
        batch.create_index("ix_confirmations_due", ["status", "expires_at"], unique=False)
    op.create_table(
        "order_cancels",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_cancels_order_id", ondelete="CASCADE"
        ),
        _user_fk("order_cancels"),
        sa.PrimaryKeyConstraint("order_id"),
    )
    op.create_table(
        "reserved_orders",
        sa.Column("id", _ID, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("environment", sa.String(length=8), nullable=False),
        sa.Column("symbol", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("order_type", sa.String(length=8), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.Column("price", _MONEY(), nullable=True),
        sa.Column("entry_date", sa.String(length=8), nullable=False),
        sa.Column("seq", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("order_no", sa.String(length=32), nullable=True),
        sa.Column("filled_qty", sa.BigInteger(), nullable=False),
        sa.Column("filled_amount", _MONEY(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _alert_fk("reserved_orders"),
        _user_fk("reserved_orders"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", name="uq_reserved_orders_alert_id"),
    )
    with op.batch_alter_table("reserved_orders") as batch:
        batch.create_index(
            "ix_reserved_orders_user_status", ["user_id", "status"], unique=False
        )
    op.create_table(
        "sale_costs",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("avg_price", _MONEY(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        _alert_fk("sale_costs"),
        sa.PrimaryKeyConstraint("alert_id"),
    )


def downgrade() -> None:
    for table in (
        "sale_costs", "reserved_orders", "order_cancels", "confirmations", "limit_holds",
        "limit_usage", "user_options",
    ):
        op.drop_table(table)
