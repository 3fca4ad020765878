"""Scheduled safety nets: nothing accepted is left behind, no held payment runs out unseen."""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.purchases.repository import PurchaseRepository

log = structlog.get_logger(__name__)

RUSTORE_HOLD_LIMIT = dt.timedelta(hours=6)
"""RuStore reverses a two-stage payment that is not confirmed within 6 hours."""
HOLD_ALARM = dt.timedelta(hours=5)


async def claim_stale(
    session: AsyncSession, stale_after: dt.timedelta, limit: int = 500
) -> list[uuid.UUID]:
    """Open purchases whose job never reached the queue, or went quiet; marked as re-sent."""
    return await PurchaseRepository(session).claim_stale(utcnow(), stale_after, limit)


async def claim_held(
    session: AsyncSession, held_for: dt.timedelta, limit: int = 500
) -> list[uuid.UUID]:
    """Held payments still unconfirmed after `held_for`; logs an error for any near the limit."""
    now = utcnow()
    held = await PurchaseRepository(session).held_since(now - held_for, limit)
    for purchase in held:
        assert purchase.paid_at is not None
        if now - purchase.paid_at > HOLD_ALARM:
            log.error(
                "purchase.hold_deadline_near",
                purchase_id=str(purchase.id),
                paid_at=purchase.paid_at.isoformat(),
                reversal_at=(purchase.paid_at + RUSTORE_HOLD_LIMIT).isoformat(),
            )
        purchase.enqueued_at = now
    return [purchase.id for purchase in held]
