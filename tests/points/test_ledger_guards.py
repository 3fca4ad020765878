"""What PostgreSQL itself refuses, whatever code (or a person with psql) sends: history is
append-only, a balance is never negative, an entry is never written twice."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.fixtures.accounts import Account
from tests.fixtures.points import AuditFn, FundFn

RESTRICT_VIOLATION = "23001"  # what the append-only trigger raises
UNIQUE_VIOLATION = "23505"
CHECK_VIOLATION = "23514"


async def _refused(session: AsyncSession, sql: str, params: dict[str, object]) -> str:
    """Run `sql`, expect PostgreSQL to refuse it, and return the SQLSTATE it gave."""
    with pytest.raises(DBAPIError) as refused:
        await session.execute(text(sql), params)
    await session.rollback()
    return str(getattr(refused.value.orig, "sqlstate", None))


@pytest.fixture
async def funded(user_account: Account, fund: FundFn) -> Account:
    await fund(user_account, 100)
    return user_account


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_entries SET amount = amount + 1 WHERE user_id = :user_id",
        "UPDATE ledger_entries SET reason = 'edited' WHERE user_id = :user_id",
        "DELETE FROM ledger_entries WHERE user_id = :user_id",
        "TRUNCATE ledger_entries CASCADE",
    ],
)
async def test_ledger_history_cannot_be_changed(
    db_session: AsyncSession, funded: Account, audit: AuditFn, sql: str
) -> None:
    before = await audit(funded.user_id)

    sqlstate = await _refused(db_session, sql, {"user_id": funded.user_id})

    assert sqlstate == RESTRICT_VIOLATION
    assert await audit(funded.user_id) == before


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("UPDATE points_accounts SET balance = -1 WHERE user_id = :user_id", CHECK_VIOLATION),
        (
            "UPDATE points_accounts SET balance = balance - 101 WHERE user_id = :user_id",
            CHECK_VIOLATION,
        ),
        ("UPDATE points_accounts SET debt = -1 WHERE user_id = :user_id", CHECK_VIOLATION),
        (
            "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, source, source_id,"
            " created_at) VALUES (:user_id, 'spend', -200, -100, 'spend', 'raw', now())",
            CHECK_VIOLATION,
        ),
        (
            "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, source, source_id,"
            " created_at) VALUES (:user_id, 'spend', 0, 100, 'spend', 'zero', now())",
            CHECK_VIOLATION,
        ),
        (
            "INSERT INTO ledger_entries (user_id, kind, amount, balance_after, source, source_id,"
            " created_at) SELECT user_id, kind, amount, balance_after, source, source_id, now()"
            " FROM ledger_entries WHERE user_id = :user_id",
            UNIQUE_VIOLATION,
        ),
    ],
    ids=["negative", "overdrawn", "negative-debt", "entry-below-zero", "zero-spend", "duplicate"],
)
async def test_raw_sql_cannot_break_the_balance(
    db_session: AsyncSession, funded: Account, audit: AuditFn, sql: str, sqlstate: str
) -> None:
    before = await audit(funded.user_id)

    assert await _refused(db_session, sql, {"user_id": funded.user_id}) == sqlstate

    assert await audit(funded.user_id) == before
