from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.points.models import LedgerEntry, PointsAccount

LOCK_ACCOUNT = """
    INSERT INTO points_accounts AS a (user_id, balance, debt, updated_at) VALUES ($1, 0, 0, $2)
    ON CONFLICT (user_id) DO UPDATE SET user_id = excluded.user_id
    RETURNING a.*
"""
"""Creates the account on first use and otherwise locks the existing row: ON CONFLICT DO UPDATE
takes the same row lock as SELECT … FOR UPDATE and returns the committed row, in one round trip
instead of an insert and a locking select."""

ENTRY = "SELECT * FROM ledger_entries WHERE source = $1 AND source_id = $2 AND kind = $3"
"""The duplicate check every credit, spend and clawback makes (its unique key's index)."""

APPEND = """
    WITH new_entry AS (
        INSERT INTO ledger_entries (user_id, kind, amount, balance_after, source, source_id,
                                    reason, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        RETURNING *
    ), account_after AS (
        UPDATE points_accounts SET balance = $4, debt = $9, updated_at = $8 WHERE user_id = $1
    )
    SELECT * FROM new_entry
"""
"""The entry and the account's balance and debt after it (updated at the entry's time), in one
statement: both or neither."""


class LedgerStatements:
    """The ledger's writes, on the asyncpg connection of the caller's transaction
    (`core.db.driver_transaction`, or `core.db.session_driver` under an ORM session).

    Every credit, spend and clawback runs these three statements under the account's lock; an ORM
    session spent several times PostgreSQL's own time on each (its unit of work, result rows and
    greenlet bridge), and the worker credits every purchase. Rows come back as objects in no
    session: they are only read, and changing one writes nothing until `append` stores it.
    """

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def lock_account(self, user_id: uuid.UUID, now: dt.datetime) -> PointsAccount:
        """The user's account row, created on first use and locked until the transaction ends.

        Every change to one user's points takes this lock first, so the duplicate check and the
        balance arithmetic that follow cannot race another job or request for the same user.
        """
        return PointsAccount(**await self.connection.fetchrow(LOCK_ACCOUNT, user_id, now))

    async def find_entry(self, source: str, source_id: str, kind: str) -> LedgerEntry | None:
        row = await self.connection.fetchrow(ENTRY, str(source), source_id, str(kind))
        return None if row is None else LedgerEntry(**row)

    async def append(self, entry: LedgerEntry, account: PointsAccount) -> LedgerEntry:
        """Insert `entry` and store `account`'s balance and debt as they are after it; the entry
        as inserted (its id)."""
        row = await self.connection.fetchrow(
            APPEND,
            entry.user_id,
            str(entry.kind),
            entry.amount,
            entry.balance_after,
            str(entry.source),
            entry.source_id,
            entry.reason,
            entry.created_at,
            account.debt,
        )
        return LedgerEntry(**row)


class PointsRepository:
    """The api's reads of a user's points."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def account(self, user_id: uuid.UUID) -> PointsAccount | None:
        return await self.session.get(PointsAccount, user_id)

    async def history(
        self, user_id: uuid.UUID, before_id: int | None, limit: int
    ) -> list[LedgerEntry]:
        """Newest first; `before_id` is the cursor (the last id of the previous page)."""
        query = select(LedgerEntry).where(LedgerEntry.user_id == user_id)
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        result = await self.session.execute(query.order_by(LedgerEntry.id.desc()).limit(limit))
        return list(result.scalars())
