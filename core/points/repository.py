from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.points.models import LedgerEntry, PointsAccount

_ACCOUNTS = cast(Table, PointsAccount.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)

_NEW_ACCOUNT = insert(_ACCOUNTS).values(
    user_id=bindparam("user_id"), balance=0, debt=0, updated_at=bindparam("now")
)
LOCK_ACCOUNT = _NEW_ACCOUNT.on_conflict_do_update(
    index_elements=[_ACCOUNTS.c.user_id], set_={"user_id": _NEW_ACCOUNT.excluded.user_id}
).returning(*_ACCOUNTS.c)
"""Creates the account on first use and otherwise locks the existing row: ON CONFLICT DO UPDATE
takes the same row lock as SELECT … FOR UPDATE and returns the committed row, in one round trip
instead of an insert and a locking select. Built once, like `ENTRY` and `APPEND`: every credit
and spend runs them, and building a statement cost more CPU than running it."""
_ENTRY_FIELDS = [column.key for column in _ENTRIES.c if column.key != "id"]
_NEW_ENTRY = (
    insert(_ENTRIES)
    .values({field: bindparam(f"new_{field}") for field in _ENTRY_FIELDS})
    .returning(*_ENTRIES.c)
    .cte("new_entry")
)
_ACCOUNT_AFTER = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.user_id == bindparam("new_user_id"))
    .values(
        balance=bindparam("new_balance_after"),
        debt=bindparam("new_debt"),
        updated_at=bindparam("new_created_at"),
    )
    .cte("account_after")
)
APPEND = select(_NEW_ENTRY).add_cte(_ACCOUNT_AFTER)
"""The entry and the account's balance and debt after it (updated at the entry's time), in one
statement: both or neither. Its parameters are named `new_<column>`: SQLAlchemy adds a parameter
named like a column of the updated table to the UPDATE's SET list."""
ENTRY = select(_ENTRIES).where(
    _ENTRIES.c.source == bindparam("source"),
    _ENTRIES.c.source_id == bindparam("source_id"),
    _ENTRIES.c.kind == bindparam("kind"),
)
"""The duplicate check every credit, spend and clawback makes, on the table rather than the
mapped class: loading the row into the session (its identity map and instance state) cost more
CPU than the query, and the entry is only read."""


class PointsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_account(self, user_id: uuid.UUID, now: dt.datetime) -> PointsAccount:
        """The user's account row, created on first use and locked until the transaction ends.

        Every change to one user's points takes this lock first, so the duplicate check and the
        balance arithmetic that follow cannot race another job or request for the same user
        (`LOCK_ACCOUNT` says how). The account comes back in no session: changing it writes
        nothing until `append` stores it with the entry that changed it.
        """
        result = await self.session.execute(LOCK_ACCOUNT, {"user_id": user_id, "now": now})
        return PointsAccount(**result.one()._mapping)

    async def find_entry(self, source: str, source_id: str, kind: str) -> LedgerEntry | None:
        result = await self.session.execute(
            ENTRY, {"source": source, "source_id": source_id, "kind": kind}
        )
        row = result.one_or_none()
        return None if row is None else LedgerEntry(**row._mapping)

    async def append(self, entry: LedgerEntry, account: PointsAccount) -> LedgerEntry:
        """Insert `entry` and store `account`'s balance and debt as they are after it; the entry
        as inserted (its id), in no session."""
        values = {f"new_{field}": getattr(entry, field) for field in _ENTRY_FIELDS}
        result = await self.session.execute(APPEND, {**values, "new_debt": account.debt})
        return LedgerEntry(**result.one()._mapping)

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
