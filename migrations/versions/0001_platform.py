"""Platform: diagnostic pings

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:25:37.740917
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "diagnostic_pings",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_by", sa.String(length=128), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostic_pings")),
    )
    op.create_index(
        op.f("ix_diagnostic_pings_processed_at"), "diagnostic_pings", ["processed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_diagnostic_pings_processed_at"), table_name="diagnostic_pings")
    op.drop_table("diagnostic_pings")
