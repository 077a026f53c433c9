"""Several KIS accounts per user (SPEC section 16): every existing user becomes one
account named `main` (their default) with their active environment and their key sets;
alerts, orders, fills, limit holds and reservation orders name their account; a
message for several accounts is one received alert and one alert row per account
(`parent_id`); fill-notice states and the day's limit use are kept per account.

Tables other rows point at (users, alerts, orders) only gain columns: SQLite would
otherwise copy and drop them, and dropping a parent table runs its ON DELETE CASCADE
with foreign keys on. `fill_sessions` (published connection states, rebuilt as soon as
connections report) is recreated empty; `limit_usage` is recreated with its rows.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-16
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MONEY = sa.BigInteger  # storage.types.Money: ten-thousandths of the currency unit
_HISTORY = ("alerts", "orders", "fills", "limit_holds", "reserved_orders")

_accounts = sa.table(
    "accounts",
    sa.column("id", sa.BigInteger()),
    sa.column("user_id", sa.BigInteger()),
    sa.column("name", sa.String()),
    sa.column("active_environment", sa.String()),
    sa.column("is_default", sa.Boolean()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_users = sa.table(
    "users",
    sa.column("id", sa.BigInteger()),
    sa.column("active_environment", sa.String()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=f"fk_{table}_account_id", ondelete="CASCADE"
    )


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=f"fk_{table}_user_id", ondelete="CASCADE"
    )


def _set_main_account(table: str) -> None:
    """Every row of `table` names the `main` account of its user (their only one yet)."""
    rows = sa.table(
        table, sa.column("user_id", sa.BigInteger()), sa.column("account_id", sa.BigInteger())
    )
    main = (
        sa.select(_accounts.c.id)
        .where(_accounts.c.user_id == rows.c.user_id, _accounts.c.is_default.is_(sa.true()))
        .scalar_subquery()
    )
    op.execute(rows.update().values(account_id=main))


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("active_environment", sa.String(length=8), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _user_fk("accounts"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_accounts_user_name"),
    )
    op.create_index(
        "uq_accounts_user_default", "accounts", ["user_id"], unique=True,
        sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default"),
    )
    op.execute(
        _accounts.insert().from_select(
            ["user_id", "name", "active_environment", "is_default", "created_at",
             "updated_at"],
            sa.select(
                _users.c.id, sa.literal("main"), _users.c.active_environment, sa.true(),
                _users.c.created_at, _users.c.updated_at,
            ),
        )
    )

    # Key sets: each belongs to its user's `main` account; their secrets stay sealed as
    # they were (user and environment) until the next master-key rotation.
    with op.batch_alter_table("key_sets") as batch:
        batch.add_column(sa.Column("account_id", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("account_bound", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    _set_main_account("key_sets")
    with op.batch_alter_table("key_sets") as batch:
        batch.alter_column("account_id", existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column("account_bound", existing_type=sa.Boolean(), server_default=None)
        batch.drop_constraint("uq_key_sets_user_environment", type_="unique")
        batch.create_unique_constraint(
            "uq_key_sets_account_environment", ["account_id", "environment"]
        )
        batch.create_foreign_key(
            "fk_key_sets_account_id", "accounts", ["account_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_key_sets_user", ["user_id"])

    # History: the account of each row (plain columns: see the docstring).
    for table in _HISTORY:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_id", sa.BigInteger(), nullable=True))
            if table == "alerts":
                batch.add_column(sa.Column("parent_id", sa.BigInteger(), nullable=True))
                batch.create_index("ix_alerts_parent", ["parent_id"])
            elif table in ("orders", "fills"):
                batch.create_index(f"ix_{table}_account_order_no", ["account_id", "order_no"])
        _set_main_account(table)

    op.drop_table("fill_sessions")
    op.create_table(
        "fill_sessions",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("environment", sa.String(length=8), nullable=False),
        sa.Column("hts_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance", sa.String(length=96), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("fill_sessions"),
        _user_fk("fill_sessions"),
        sa.PrimaryKeyConstraint("account_id"),
    )

    usage_columns = ("user_id", "market", "day", "orders", "bought", "updated_at")
    old_usage = sa.table("limit_usage", *(sa.column(name) for name in usage_columns))
    kept = op.get_bind().execute(sa.select(old_usage)).mappings().all()
    op.drop_table("limit_usage")
    op.create_table(
        "limit_usage",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("market", sa.String(length=8), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("bought", _MONEY(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _account_fk("limit_usage"),
        _user_fk("limit_usage"),
        sa.PrimaryKeyConstraint("account_id", "market", "day"),
    )
    if kept:
        mains = dict(
            op.get_bind().execute(sa.select(_accounts.c.user_id, _accounts.c.id)).all()
        )
        new_usage = sa.table(
            "limit_usage", sa.column("account_id", sa.BigInteger()),
            *(sa.column(name) for name in usage_columns),
        )
        op.execute(new_usage.insert().values(
            [{**row, "account_id": mains[row["user_id"]]} for row in kept]
        ))


def downgrade() -> None:
    usage_columns = ("user_id", "market", "day", "orders", "bought", "updated_at")
    usage = sa.table(
        "limit_usage", sa.column("account_id"), *(sa.column(name) for name in usage_columns)
    )
    defaults = sa.select(_accounts.c.id).where(_accounts.c.is_default.is_(sa.true()))
    kept = op.get_bind().execute(
        sa.select(*(usage.c[name] for name in usage_columns)).where(
            usage.c.account_id.in_(defaults)
        )
    ).mappings().all()
    op.drop_table("limit_usage")
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
    if kept:
        old = sa.table("limit_usage", *(sa.column(name) for name in usage_columns))
        op.execute(old.insert().values([dict(row) for row in kept]))
    op.drop_table("fill_sessions")
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
        _user_fk("fill_sessions"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    for table in reversed(_HISTORY):
        with op.batch_alter_table(table) as batch:
            if table == "alerts":
                batch.drop_index("ix_alerts_parent")
                batch.drop_column("parent_id")
            elif table in ("orders", "fills"):
                batch.drop_index(f"ix_{table}_account_order_no")
            batch.drop_column("account_id")
    # Only the default account's keys fit the old one-set-per-environment shape.
    key_sets = sa.table("key_sets", sa.column("account_id", sa.BigInteger()))
    op.execute(key_sets.delete().where(key_sets.c.account_id.not_in(defaults)))
    with op.batch_alter_table("key_sets") as batch:
        batch.drop_index("ix_key_sets_user")
        batch.drop_constraint("fk_key_sets_account_id", type_="foreignkey")
        batch.drop_constraint("uq_key_sets_account_environment", type_="unique")
        batch.create_unique_constraint(
            "uq_key_sets_user_environment", ["user_id", "environment"]
        )
        batch.drop_column("account_bound")
        batch.drop_column("account_id")
    op.drop_index("uq_accounts_user_default", table_name="accounts")
    op.drop_table("accounts")
