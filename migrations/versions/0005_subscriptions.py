"""Subscriptions: one row per RuStore subscription, its last RuStore report and next check

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 20:07:22.613483
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("rustore_purchase_id", sa.String(length=64), nullable=True),
        sa.Column("subscription_token", sa.String(length=128), nullable=True),
        sa.Column("invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.Uuid(), nullable=True),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("verification", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("period", sa.String(length=16), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_renewing", sa.Boolean(), nullable=True),
        sa.Column("payment_state", sa.Integer(), nullable=True),
        sa.Column("cancel_reason", sa.Integer(), nullable=True),
        sa.Column("rustore_order_id", sa.String(length=64), nullable=True),
        sa.Column("order_sequence", sa.Integer(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rustore", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dunning_checks", sa.Integer(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_by", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IS NULL OR status IN"
            " ('active', 'grace', 'on_hold', 'cancelled', 'expired', 'refunded')",
            name=op.f("ck_subscriptions_status_known"),
        ),
        sa.CheckConstraint(
            "verification IN ('pending', 'verifying', 'verified', 'rejected', 'failed')",
            name=op.f("ck_subscriptions_verification_known"),
        ),
        sa.CheckConstraint(
            "dunning_checks >= 0", name=op.f("ck_subscriptions_dunning_checks_not_negative")
        ),
        sa.CheckConstraint(
            "rustore_purchase_id IS NOT NULL OR subscription_token IS NOT NULL",
            name=op.f("ck_subscriptions_rustore_reference"),
        ),
        sa.ForeignKeyConstraint(
            ["refunded_by"],
            ["users.id"],
            name=op.f("fk_subscriptions_refunded_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
        sa.UniqueConstraint(
            "rustore_purchase_id", name=op.f("uq_subscriptions_rustore_purchase_id")
        ),
        sa.UniqueConstraint("subscription_token", name=op.f("uq_subscriptions_subscription_token")),
    )
    op.create_index(
        "ix_subscriptions_next_check_at",
        "subscriptions",
        ["next_check_at"],
        unique=False,
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.create_index(op.f("ix_subscriptions_user_id"), "subscriptions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_subscriptions_user_id"), table_name="subscriptions")
    op.drop_index(
        "ix_subscriptions_next_check_at",
        table_name="subscriptions",
        postgresql_where=sa.text("next_check_at IS NOT NULL"),
    )
    op.drop_table("subscriptions")
