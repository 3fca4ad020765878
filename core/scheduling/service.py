from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.scheduling.models import ScheduledRun


async def claim_slot(session: AsyncSession, job: str, slot: str, lease: dt.timedelta) -> bool:
    """True when this caller may run `job` for `slot`: nobody claimed it, or a claim went stale."""
    now = utcnow()
    statement = (
        insert(ScheduledRun)
        .values(job=job, slot=slot, claimed_at=now)
        .on_conflict_do_update(
            index_elements=[ScheduledRun.job, ScheduledRun.slot],
            set_={"claimed_at": now},
            where=ScheduledRun.finished_at.is_(None) & (ScheduledRun.claimed_at < now - lease),
        )
        .returning(ScheduledRun.job)
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def finish_slot(session: AsyncSession, job: str, slot: str, outcome: str) -> None:
    await session.execute(
        update(ScheduledRun)
        .where(ScheduledRun.job == job, ScheduledRun.slot == slot)
        .values(finished_at=utcnow(), outcome=outcome[:500])
    )
