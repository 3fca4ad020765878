"""Audit log and purchase timeline: the append-only audit_log, purchase_events, search indexes

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The points ledger's mechanism (0003): a row trigger refuses UPDATE and DELETE, a statement
# trigger refuses TRUNCATE, both with restrict_violation, whoever sends them.
APPEND_ONLY = (
    """
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only; nobody edits or removes its entries'
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()
    """,
    """
    CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()
    """,
)
NEWEST_FIRST = [sa.literal_column("created_at DESC"), sa.literal_column("id DESC")]


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor_user_id", sa.Uuid(), nullable=False),
        sa.Column("actor_email", sa.String(length=254), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_target", "audit_log", ["target_type", "target_id", "id"], unique=False
    )
    for statement in APPEND_ONLY:
        op.execute(statement)
    op.create_table(
        "purchase_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("purchase_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.CheckConstraint(
            "kind IN ('attempt', 'rustore_call', 'retry')",
            name=op.f("ck_purchase_events_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["purchase_id"],
            ["purchases.id"],
            name=op.f("fk_purchase_events_purchase_id_purchases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_events")),
    )
    op.create_index(
        "ix_purchase_events_purchase_id_id",
        "purchase_events",
        ["purchase_id", "id"],
        unique=False,
    )
    # Ops search (core/ops/search_repository.py): every reading of the search box, and each
    # state, on an index. No index on created_at alone: the newest of all are the newest of each
    # state, and such an index would lure the planner off the user index for a user's list.
    op.create_index(op.f("ix_purchases_order_id"), "purchases", ["order_id"], unique=False)
    op.create_index(
        "ix_purchases_state_created_at", "purchases", ["state", *NEWEST_FIRST], unique=False
    )
    op.create_index(
        op.f("ix_subscriptions_invoice_id"), "subscriptions", ["invoice_id"], unique=False
    )
    op.create_index(op.f("ix_subscriptions_order_id"), "subscriptions", ["order_id"], unique=False)
    op.create_index(
        "ix_subscriptions_status_created_at",
        "subscriptions",
        ["status", *NEWEST_FIRST],
        unique=False,
    )
    op.create_index(
        "ix_subscriptions_verification_created_at",
        "subscriptions",
        ["verification", *NEWEST_FIRST],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_subscriptions_verification_created_at", table_name="subscriptions")
    op.drop_index("ix_subscriptions_status_created_at", table_name="subscriptions")
    op.drop_index(op.f("ix_subscriptions_order_id"), table_name="subscriptions")
    op.drop_index(op.f("ix_subscriptions_invoice_id"), table_name="subscriptions")
    op.drop_index("ix_purchases_state_created_at", table_name="purchases")
    op.drop_index(op.f("ix_purchases_order_id"), table_name="purchases")
    op.drop_index("ix_purchase_events_purchase_id_id", table_name="purchase_events")
    op.drop_table("purchase_events")
    op.drop_index("ix_audit_log_target", table_name="audit_log")
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
