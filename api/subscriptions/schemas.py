from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec

from api.purchases.schemas import InvoiceId, ProductId, RuStorePurchaseId
from core.subscriptions.models import Subscription
from core.subscriptions.service import Current, Entitlement, Submission

SubscriptionToken = Annotated[
    str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
]


class VerifyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """`purchaseId` from the Pay SDK, or `subscriptionToken` from the legacy BillingClient SDK
    (read with RuStore's v3 method, used only when there is no `purchaseId`)."""

    subscription_id: ProductId
    """RuStore's name for the product code."""
    purchase_id: RuStorePurchaseId | None = None
    subscription_token: SubscriptionToken | None = None
    invoice_id: InvoiceId | None = None
    order_id: uuid.UUID | None = None
    sandbox: bool = False

    def __post_init__(self) -> None:
        if self.purchase_id is None and self.subscription_token is None:
            raise ValueError("purchaseId (Pay SDK) or subscriptionToken (BillingClient) needed")

    def submission(self) -> Submission:
        return Submission(
            product_id=self.subscription_id,
            rustore_purchase_id=self.purchase_id,
            subscription_token=None if self.purchase_id else self.subscription_token,
            invoice_id=self.invoice_id,
            order_id=self.order_id,
            sandbox=self.sandbox,
        )


class StateOut(msgspec.Struct, frozen=True, rename="camel"):
    """A verified subscription as the app shows it."""

    id: uuid.UUID
    product_id: str
    status: str
    period: str
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    auto_renewing: bool | None
    has_access: bool

    @classmethod
    def from_current(cls, current: Current) -> StateOut:
        sub, state = current.subscription, current.state
        return cls(
            id=sub.id,
            product_id=sub.product_id,
            status=state.status.value,
            period=state.period.value,
            start_date=sub.started_at,
            end_date=sub.expires_at,
            auto_renewing=sub.auto_renewing,
            has_access=state.has_access,
        )


class SubscriptionOut(msgspec.Struct, frozen=True, rename="camel"):
    """`processing` is how far verification got (pending, processing, completed, rejected,
    failed); `state` is the subscription once verified, else null."""

    id: uuid.UUID
    product_id: str
    processing: str
    failure_reason: str | None
    state: StateOut | None
    sandbox: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    refunded_at: dt.datetime | None
    status_url: str

    @classmethod
    def from_model(cls, sub: Subscription, now: dt.datetime) -> SubscriptionOut:
        state = sub.current(now)
        return cls(
            id=sub.id,
            product_id=sub.product_id,
            processing=sub.processing,
            failure_reason=sub.failure_reason,
            state=StateOut.from_current(Current(sub, state)) if state else None,
            sandbox=sub.sandbox,
            created_at=sub.created_at,
            updated_at=sub.updated_at,
            refunded_at=sub.refunded_at,
            status_url=f"/api/subscriptions/{sub.id}",
        )


class StatusOut(msgspec.Struct, frozen=True, rename="camel"):
    active: bool
    """True when any subscription gives access now."""
    subscriptions: list[StateOut]


class RecheckOut(msgspec.Struct, frozen=True, rename="camel"):
    subscriptions: list[uuid.UUID]
    """The subscriptions being re-read from RuStore; see /api/subscriptions/status shortly."""


class EntitlementOut(msgspec.Struct, frozen=True, rename="camel"):
    product_id: str
    source: str
    """`subscription` or `purchase`: what grants it (`sourceId` is its id)."""
    source_id: uuid.UUID
    status: str
    until: dt.datetime | None
    """Null: for good (a non-consumable purchase)."""

    @classmethod
    def from_entitlement(cls, item: Entitlement) -> EntitlementOut:
        return cls(item.product_id, item.source, item.source_id, item.status, item.until)


class EntitlementsOut(msgspec.Struct, frozen=True, rename="camel"):
    entitlements: list[EntitlementOut]
