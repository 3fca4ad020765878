"""Finding rows whose job never reached the queue, shared by every table that enqueues jobs.

A row is committed before its job is sent. When the send fails (Redis down) the row's
`enqueued_at` is cleared; when the process dies between commit and send, the row just goes quiet.
A sweep claims both kinds and sends their jobs again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession


async def mark_not_enqueued(session: AsyncSession, model: Any, row_id: uuid.UUID) -> None:
    """The queue was unreachable: leave the row for the next sweep."""
    await session.execute(update(model).where(model.id == row_id).values(enqueued_at=None))


async def claim_unsent(
    session: AsyncSession,
    model: Any,
    still_open: ColumnElement[bool],
    now: dt.datetime,
    stale_after: dt.timedelta,
    limit: int,
) -> list[uuid.UUID]:
    """Open rows whose job was never sent, or went quiet for `stale_after`; marked re-sent.

    `FOR UPDATE SKIP LOCKED` lets two schedulers run this at once without picking the same rows;
    the claim is the new `enqueued_at`, so the next sweep leaves them alone.
    """
    stale = now - stale_after
    candidates = (
        select(model.id)
        .where(
            still_open,
            or_(
                model.enqueued_at.is_(None),
                (model.enqueued_at < stale) & (model.updated_at < stale),
            ),
        )
        .order_by(model.updated_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(model)
        .where(model.id.in_(candidates.scalar_subquery()))
        .values(enqueued_at=now)
        .returning(model.id)
    )
    return list(result.scalars())
