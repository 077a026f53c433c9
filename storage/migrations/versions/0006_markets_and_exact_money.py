"""Markets and exact money: orders and fills carry their market, exchange and currency;
prices and amounts become scaled integers (ten-thousandths of the currency unit), so
USD cents and sub-penny prices are exact and SQL sums of fills stay exact. Existing
rows are KRX orders in KRW: their whole-won values are scaled by 10,000.

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("market", sa.String(length=8), nullable=False,
                                   server_default="KRX"))
        batch.add_column(sa.Column("exchange", sa.String(length=8), nullable=False,
                                   server_default="KRX"))
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=False,
                                   server_default="KRW"))
    with op.batch_alter_table("fills") as batch:
        batch.add_column(sa.Column("market", sa.String(length=8), nullable=False,
                                   server_default="KRX"))
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=False,
                                   server_default="KRW"))
    op.execute("UPDATE orders SET price = price * 10000, filled_amount = filled_amount * 10000")
    op.execute("UPDATE fills SET price = price * 10000")


def downgrade() -> None:
    # Whole units again: only exact for KRW rows, which is all that existed before.
    op.execute("UPDATE fills SET price = price / 10000")
    op.execute("UPDATE orders SET price = price / 10000, filled_amount = filled_amount / 10000")
    with op.batch_alter_table("fills") as batch:
        batch.drop_column("currency")
        batch.drop_column("market")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("currency")
        batch.drop_column("exchange")
        batch.drop_column("market")
