"""Orders keep the fill notices' sum apart from what KIS's daily executions showed
(fills whose notices were lost are settled without being counted twice); users'
authenticator-app (TOTP) secrets, encrypted.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for column in ("notice_qty", "notice_amount", "settled_qty"):
            batch_op.add_column(
                sa.Column(column, sa.BigInteger(), nullable=False, server_default="0")
            )
    # Until now the filled totals were the notices' sum.
    op.execute("UPDATE orders SET notice_qty = filled_qty, notice_amount = filled_amount")
    op.create_table(
        "totp_secrets",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("secret_enc", sa.LargeBinary(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_totp_secrets_user_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", name="uq_totp_secrets_user_id"),
    )


def downgrade() -> None:
    op.drop_table("totp_secrets")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for column in ("settled_qty", "notice_amount", "notice_qty"):
            batch_op.drop_column(column)
