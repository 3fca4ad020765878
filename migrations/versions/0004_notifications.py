"""RuStore notifications: the journal of webhooks RuStore delivered

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 19:53:35.864809
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rustore_notifications",
        sa.Column("notification_id", sa.String(length=128), nullable=False),
        sa.Column("notification_type", sa.String(length=32), nullable=False),
        sa.Column("sandbox", sa.Boolean(), nullable=False),
        sa.Column("app_id", sa.BigInteger(), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("purchase_id", sa.String(length=64), nullable=True),
        sa.Column("event", sa.String(length=32), nullable=True),
        sa.Column("raw_body", sa.Text(), nullable=False),
        sa.Column("notification", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column(
            "received_at",
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
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "status IN ('received', 'processed', 'failed', 'ignored')",
            name=op.f("ck_rustore_notifications_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rustore_notifications")),
        sa.UniqueConstraint(
            "notification_id", name=op.f("uq_rustore_notifications_notification_id")
        ),
    )
    op.create_index(
        op.f("ix_rustore_notifications_invoice_id"),
        "rustore_notifications",
        ["invoice_id"],
        unique=False,
    )
    op.create_index(
        "ix_rustore_notifications_received_at",
        "rustore_notifications",
        [sa.literal_column("received_at DESC"), "id"],
        unique=False,
    )
    op.create_index(
        "ix_rustore_notifications_status_received_at",
        "rustore_notifications",
        ["status", sa.literal_column("received_at DESC"), "id"],
        unique=False,
    )
    op.create_index(
        "ix_rustore_notifications_unprocessed",
        "rustore_notifications",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("status = 'received'"),
    )


def downgrade() -> None:
    op.drop_table("rustore_notifications")  # its indexes go with it
