from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import Table, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core import resending
from core.notifications.models import NotificationStatus, RuStoreNotification

N = RuStoreNotification
RECEIVED = NotificationStatus.RECEIVED.value
NOTIFICATIONS = cast(Table, N.__table__)
INSERT_NEW = (
    insert(NOTIFICATIONS)
    .on_conflict_do_nothing(index_elements=[NOTIFICATIONS.c.notification_id])
    .returning(NOTIFICATIONS.c.id)
)
"""Built once and addressed to the table, not the mapped class: every webhook runs it, and
building it per call, through the ORM's bulk-insert path, cost more CPU than the rest of the
request's SQL work."""


class NotificationRepository:
    """The notification journal; every change is one conditional statement, so a redelivered
    job, the sweep and a replay never undo each other's work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Store a notification unless its RuStore id is known; None for a redelivery."""
        inserted: uuid.UUID | None = (
            await self.session.execute(INSERT_NEW, values)
        ).scalar_one_or_none()
        return inserted

    async def mark_not_enqueued(self, notification_id: uuid.UUID) -> None:
        await resending.mark_not_enqueued(self.session, N, notification_id)

    async def get(self, notification_id: uuid.UUID) -> RuStoreNotification | None:
        """The row as stored now, locked until the transaction ends."""
        return await self.session.get(
            N, notification_id, populate_existing=True, with_for_update=True
        )

    async def start_attempt(self, notification_id: uuid.UUID) -> RuStoreNotification | None:
        """Count an attempt on a notification still to process; None when it is done."""
        return await self._update(
            notification_id, {RECEIVED}, attempts=N.attempts + 1, updated_at=func.now()
        )

    async def finish(
        self, notification_id: uuid.UUID, status: NotificationStatus, outcome: str | None
    ) -> None:
        await self._update(
            notification_id,
            {RECEIVED},
            status=status.value,
            outcome=outcome,
            processed_at=func.now(),
            updated_at=func.now(),
        )

    async def note_error(self, notification_id: uuid.UUID, error: str) -> None:
        await self._update(notification_id, {RECEIVED}, last_error=error, updated_at=func.now())

    async def fail(self, notification_id: uuid.UUID, error: str) -> None:
        await self._update(
            notification_id,
            {RECEIVED},
            status=NotificationStatus.FAILED.value,
            last_error=error,
            updated_at=func.now(),
        )

    async def reopen(
        self, notification_id: uuid.UUID, now: dt.datetime
    ) -> RuStoreNotification | None:
        """Put any notification back to `received` for a replay; None for an unknown id."""
        return await self._update(
            notification_id,
            set(NotificationStatus),
            status=RECEIVED,
            enqueued_at=now,
            processed_at=None,
            updated_at=func.now(),
        )

    async def page(
        self, status: NotificationStatus | None, before: uuid.UUID | None, limit: int
    ) -> list[RuStoreNotification]:
        """Newest first, keyset-paged after the row `before` (on one index at any depth)."""
        query = select(N)
        if status is not None:
            query = query.where(N.status == status.value)
        if before is not None:
            after = select(N.received_at, N.id).where(N.id == before).subquery()
            query = query.where(tuple_(N.received_at, N.id) < select(after).scalar_subquery())
        query = query.order_by(N.received_at.desc(), N.id.desc()).limit(limit)
        return list((await self.session.execute(query)).scalars())

    async def about_invoice(self, invoice_id: int, limit: int) -> list[RuStoreNotification]:
        """The notifications that named an invoice, oldest first (a purchase's timeline)."""
        query = (
            select(N).where(N.invoice_id == invoice_id).order_by(N.received_at, N.id).limit(limit)
        )
        return list((await self.session.execute(query)).scalars())

    async def claim_unsent(
        self, now: dt.datetime, stale_after: dt.timedelta, limit: int
    ) -> list[uuid.UUID]:
        """Notifications whose job never reached the queue or went quiet; marks them re-sent."""
        return await resending.claim_unsent(
            self.session, N, N.status == RECEIVED, now, stale_after, limit
        )

    async def _update(
        self, notification_id: uuid.UUID, allowed_from: Collection[str], **values: Any
    ) -> RuStoreNotification | None:
        statement = (
            update(N)
            .where(N.id == notification_id, N.status.in_(allowed_from))
            .values(**values)
            .returning(N)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()
