from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.points.models import LedgerEntry, PointsAccount

_NEW_ACCOUNT = insert(PointsAccount).values(
    user_id=bindparam("user_id"), balance=0, debt=0, updated_at=bindparam("now")
)
LOCK_ACCOUNT = _NEW_ACCOUNT.on_conflict_do_update(
    index_elements=[PointsAccount.user_id], set_={"user_id": _NEW_ACCOUNT.excluded.user_id}
).returning(PointsAccount)
"""Creates the account on first use and otherwise locks the existing row: ON CONFLICT DO UPDATE
takes the same row lock as SELECT … FOR UPDATE and returns the committed row, in one round trip
instead of an insert and a locking select. Built once, like `ENTRY`: every credit and spend runs
both, and building a statement cost more CPU than running it."""
ENTRY = select(LedgerEntry).where(
    LedgerEntry.source == bindparam("source"),
    LedgerEntry.source_id == bindparam("source_id"),
    LedgerEntry.kind == bindparam("kind"),
)


class PointsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_account(self, user_id: uuid.UUID, now: dt.datetime) -> PointsAccount:
        """The user's account row, created on first use and locked until the transaction ends.

        Every change to one user's points takes this lock first, so the duplicate check and the
        balance arithmetic that follow cannot race another job or request for the same user
        (`LOCK_ACCOUNT` says how).
        """
        result = await self.session.execute(
            LOCK_ACCOUNT,
            {"user_id": user_id, "now": now},
            execution_options={"populate_existing": True},
        )
        return result.scalar_one()

    async def find_entry(self, source: str, source_id: str, kind: str) -> LedgerEntry | None:
        result = await self.session.execute(
            ENTRY, {"source": source, "source_id": source_id, "kind": kind}
        )
        return result.scalar_one_or_none()

    async def append(self, entry: LedgerEntry) -> LedgerEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

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
