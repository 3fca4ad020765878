"""A function that fails the first-submission statement when it claimed a key for no purchase

The usual purchase submission is one autocommit statement (core/purchases/repository.py,
FIRST_SUBMISSION): it claims the Idempotency-Key and inserts the purchase. When the key was new but
the purchase was not inserted (already reported, or an unknown product), the key's claim must not
stand: the statement calls this function, whose error rolls the whole statement back, and the api
takes the general path. It replaces a transaction (BEGIN and COMMIT, two more round trips per
accepted purchase) whose only use was that rollback.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION undo_first_submission() RETURNS uuid LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            RAISE EXCEPTION 'first submission undone: the key was new, the purchase was not'
                USING ERRCODE = 'raise_exception';
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION undo_first_submission()")
