from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.ownership import OwnedRepository
from core.subscriptions.models import OPEN_VERIFICATION, Subscription, Verification


class UserSubscriptions(OwnedRepository[Subscription]):
    """A user's subscriptions; a foreign id reads as unknown."""

    model = Subscription
    noun = "subscription"

    async def verified(self) -> list[Subscription]:
        query = (
            self.owned()
            .where(Subscription.verification == Verification.VERIFIED)
            .order_by(Subscription.expires_at.desc(), Subscription.id)
        )
        return list((await self.session.execute(query)).scalars())


class SubscriptionRepository:
    """Reads and changes of the verify and check jobs, the scheduler and admins."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_new(self, values: dict[str, object]) -> Subscription | None:
        """Insert unless RuStore's purchase id or token is already known; None when it is."""
        statement = (
            insert(Subscription).values(**values).on_conflict_do_nothing().returning(Subscription)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def by_rustore_reference(
        self, rustore_purchase_id: str | None, subscription_token: str | None
    ) -> Subscription | None:
        conditions = []
        if rustore_purchase_id is not None:
            conditions.append(Subscription.rustore_purchase_id == rustore_purchase_id)
        if subscription_token is not None:
            conditions.append(Subscription.subscription_token == subscription_token)
        if not conditions:
            return None
        result = await self.session.execute(select(Subscription).where(or_(*conditions)).limit(1))
        return result.scalar_one_or_none()

    async def get(self, subscription_id: uuid.UUID, *, lock: bool = False) -> Subscription | None:
        """Any user's subscription (workers and admins); `lock` holds it until commit."""
        return await self.session.get(
            Subscription, subscription_id, populate_existing=True, with_for_update=lock or None
        )

    async def transition(
        self, subscription_id: uuid.UUID, allowed_from: Collection[str], **values: object
    ) -> Subscription | None:
        """Change a subscription only while its verification is in `allowed_from`."""
        statement = (
            update(Subscription)
            .where(
                Subscription.id == subscription_id,
                Subscription.verification.in_(allowed_from),
            )
            .values(updated_at=func.now(), **values)
            .returning(Subscription)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def start_attempt(
        self, subscription_id: uuid.UUID, lease_until: dt.datetime
    ) -> Subscription | None:
        """Count a verification attempt and lease the row to it; None once decided."""
        return await self.transition(
            subscription_id,
            OPEN_VERIFICATION,
            attempts=Subscription.attempts + 1,
            verification=Verification.VERIFYING,
            next_check_at=lease_until,
        )

    async def set_next_check(self, subscription_id: uuid.UUID, at: dt.datetime | None) -> None:
        await self.session.execute(
            update(Subscription).where(Subscription.id == subscription_id).values(next_check_at=at)
        )

    async def claim_due(
        self, now: dt.datetime, lease: dt.timedelta, limit: int
    ) -> list[tuple[uuid.UUID, str]]:
        """Subscriptions whose check is due, as (id, verification); each is leased for `lease`.

        `FOR UPDATE SKIP LOCKED` keeps two schedulers off each other's rows, and the lease (the
        new `next_check_at`) keeps the next run off them; if the claimer dies before sending,
        the rows fall due again when the lease runs out.
        """
        due = (
            select(Subscription.id)
            .where(Subscription.next_check_at <= now)
            .order_by(Subscription.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            update(Subscription)
            .where(Subscription.id.in_(due.scalar_subquery()))
            .values(next_check_at=now + lease)
            .returning(Subscription.id, Subscription.verification)
        )
        return [(row.id, row.verification) for row in result]

    async def recheckable(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The user's verified, not refunded subscriptions: what "renew" asks RuStore about."""
        result = await self.session.execute(
            select(Subscription.id).where(
                Subscription.user_id == user_id,
                Subscription.verification == Verification.VERIFIED,
                Subscription.refunded_at.is_(None),
            )
        )
        return list(result.scalars())
