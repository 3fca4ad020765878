"""The ops overview's reads of PostgreSQL: counts by state and the oldest unfinished purchase.

They run on every overview refresh and every /metrics scrape, so each is one statement that an
index answers without reading the table: the narrow `ix_purchases_state` (migration 0008) for the
counts by state, `ix_purchases_state_created_at` (0007) for the oldest open purchase, which reads
only the open states' entries. At 1,000,000 purchases a whole scrape takes ~50 ms
(docs/operations.md has the figures).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.purchases.models import OPEN_STATES, Purchase, PurchaseState
from core.subscriptions.derivation import WITH_ACCESS, SubscriptionStatus
from core.subscriptions.models import Subscription, Verification

SUBSCRIPTION_STATES = (
    *(status.value for status in SubscriptionStatus),
    *(step.value for step in Verification if step is not Verification.VERIFIED),
)
"""A verified subscription is in its RuStore status; one not verified yet, in its step."""


class OpenPurchase(NamedTuple):
    id: uuid.UUID
    state: str
    created_at: dt.datetime


class OpsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def purchases_by_state(self) -> dict[str, int]:
        """Every state, zero included, so a state that empties still shows."""
        rows = await self.session.execute(
            select(Purchase.state, func.count()).group_by(Purchase.state)
        )
        counts = dict.fromkeys((state.value for state in PurchaseState), 0)
        counts.update({state: count for state, count in rows})
        return counts

    async def subscriptions_by_state(self) -> dict[str, int]:
        state = func.coalesce(Subscription.status, Subscription.verification)
        rows = await self.session.execute(select(state, func.count()).group_by(state))
        counts = dict.fromkeys(SUBSCRIPTION_STATES, 0)
        counts.update({state: count for state, count in rows})
        return counts

    async def oldest_open_purchase(self) -> OpenPurchase | None:
        row = (
            await self.session.execute(
                select(Purchase.id, Purchase.state, Purchase.created_at)
                .where(Purchase.state.in_(OPEN_STATES))
                .order_by(Purchase.created_at, Purchase.id)
                .limit(1)
            )
        ).one_or_none()
        return None if row is None else OpenPurchase(*row)


def active_subscriptions(subscriptions_by_state: dict[str, int]) -> int:
    """Subscriptions that grant access now, out of the counts by state."""
    return sum(subscriptions_by_state.get(status.value, 0) for status in WITH_ACCESS)
