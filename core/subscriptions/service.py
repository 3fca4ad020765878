"""What the api (and the notification processor) do with subscriptions: submit, read, decide
access, and ask for a fresh look at RuStore."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.catalogue import service as catalogue
from core.catalogue.models import Product, ProductType
from core.db import utcnow
from core.errors import ConflictError
from core.logging import current_request_id
from core.purchases.models import Purchase, PurchaseState
from core.purchases.repository import UserPurchases
from core.subscriptions.derivation import Derived, SubscriptionStatus
from core.subscriptions.models import Subscription, Verification
from core.subscriptions.repository import SubscriptionRepository, UserSubscriptions
from core.subscriptions.schedule import CLAIM_LEASE

SUBSCRIPTION_TYPES = (ProductType.SUBSCRIPTION,)
# Which subscription the profile shows when several give access.
PREFERENCE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.GRACE, SubscriptionStatus.CANCELLED)


@dataclass(frozen=True)
class Submission:
    product_id: str
    rustore_purchase_id: str | None
    subscription_token: str | None
    invoice_id: int | None
    order_id: uuid.UUID | None
    sandbox: bool


@dataclass(frozen=True)
class Current:
    """A verified subscription and what it means right now."""

    subscription: Subscription
    state: Derived


@dataclass(frozen=True)
class Entitlement:
    """Something the user may use now, until when (None: for good), and what grants it."""

    product_id: str
    source: str
    source_id: uuid.UUID
    status: str
    until: dt.datetime | None


async def submit(
    session: AsyncSession, user_id: uuid.UUID, submission: Submission
) -> tuple[Subscription, bool]:
    """Record a subscription the app reports, once per RuStore subscription; (row, created).

    The row is leased to the verify job that is about to be sent; if that message is lost, the
    lease runs out and the scheduler sends it again. Ownership is decided by verification.
    """
    await catalogue.purchasable(session, submission.product_id, SUBSCRIPTION_TYPES)
    repository = SubscriptionRepository(session)
    sub = await repository.insert_new(
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "product_id": submission.product_id,
            "rustore_purchase_id": submission.rustore_purchase_id,
            "subscription_token": submission.subscription_token,
            "invoice_id": submission.invoice_id,
            "order_id": submission.order_id,
            "sandbox": submission.sandbox,
            "verification": Verification.PENDING,
            "request_id": current_request_id(),
            "next_check_at": utcnow() + CLAIM_LEASE,
        }
    )
    if sub is not None:
        return sub, True
    existing = await repository.by_rustore_reference(
        submission.rustore_purchase_id, submission.subscription_token
    )
    if existing is None or existing.user_id != user_id:
        raise ConflictError(
            "This RuStore subscription was already submitted from another account",
            code="subscription_already_submitted",
        )
    return existing, False


async def check_now(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """The queue was unreachable: let the scheduler's next claim send it."""
    await SubscriptionRepository(session).set_next_check(subscription_id, utcnow())


async def get_own(
    session: AsyncSession, user_id: uuid.UUID, subscription_id: uuid.UUID
) -> Subscription:
    return await UserSubscriptions(session, user_id).get(subscription_id)


async def claim_due(
    session: AsyncSession, limit: int = 500
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Claim the subscriptions whose check is due: (to verify, to check). Verifications show
    up here only when their message was lost, since each attempt renews the row's lease."""
    claimed = await SubscriptionRepository(session).claim_due(utcnow(), CLAIM_LEASE, limit)
    to_verify = [sub_id for sub_id, state in claimed if state != Verification.VERIFIED]
    to_check = [sub_id for sub_id, state in claimed if state == Verification.VERIFIED]
    return to_verify, to_check


async def recheckable(session: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    return await SubscriptionRepository(session).recheckable(user_id)


async def current(session: AsyncSession, user_id: uuid.UUID) -> list[Current]:
    """The user's verified subscriptions with their state now, latest end date first."""
    now = utcnow()
    found = []
    for sub in await UserSubscriptions(session, user_id).verified():
        state = sub.current(now)
        if state is not None:
            found.append(Current(sub, state))
    return found


def best(subscriptions: list[Current]) -> Current | None:
    """The one to summarise: the best with access, else the one that ended last."""
    with_access = [c for c in subscriptions if c.state.has_access]
    if with_access:
        return min(with_access, key=lambda c: PREFERENCE.index(c.state.status))
    return subscriptions[0] if subscriptions else None


async def summary(session: AsyncSession, user_id: uuid.UUID) -> Current | None:
    return best(await current(session, user_id))


async def entitlements(session: AsyncSession, user_id: uuid.UUID) -> list[Entitlement]:
    """Subscriptions with access now (active, grace, cancelled but paid up) and non-consumables
    bought and credited, which last for good."""
    granted = [
        Entitlement(
            c.subscription.product_id,
            "subscription",
            c.subscription.id,
            c.state.status,
            c.subscription.expires_at,
        )
        for c in await current(session, user_id)
        if c.state.has_access
    ]
    owned = (
        UserPurchases(session, user_id)
        .owned()
        .join(Product, Product.product_id == Purchase.product_id)
        .where(
            Purchase.state == PurchaseState.CREDITED,
            Product.type == ProductType.NON_CONSUMABLE,
        )
        .order_by(Purchase.created_at)
    )
    for purchase in (await session.execute(owned)).scalars():
        granted.append(Entitlement(purchase.product_id, "purchase", purchase.id, "owned", None))
    return granted
