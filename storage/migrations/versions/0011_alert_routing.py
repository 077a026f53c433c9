"""Several instances: alerts carry the lease of the KIS key whose owner acts on them and
who claimed them; fill-notice connection states are published for every instance.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("lease", sa.String(length=160), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=96), nullable=True))
        batch.add_column(sa.Column("claim_epoch", sa.BigInteger(), nullable=True))
        batch.create_index("ix_alerts_status_lease", ["status", "lease"])
    op.create_table(
        "fill_sessions",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("environment", sa.String(length=8), nullable=False),
        sa.Column("hts_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance", sa.String(length=96), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_fill_sessions_user_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id"),
    )


def downgrade() -> None:
    op.drop_table("fill_sessions")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_status_lease")
        batch.drop_column("claim_epoch")
        batch.drop_column("claimed_by")
        batch.drop_column("lease")
