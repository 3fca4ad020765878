from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec

from core.purchases.models import Purchase, PurchaseIntent
from core.purchases.service import Submission

ProductId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
RuStorePurchaseId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")
]
InvoiceId = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]


class IntentIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    product_id: ProductId


class IntentOut(msgspec.Struct, frozen=True, rename="camel"):
    order_id: uuid.UUID
    developer_payload: str
    product_id: str

    @classmethod
    def from_model(cls, intent: PurchaseIntent) -> IntentOut:
        return cls(intent.order_id, intent.developer_payload, intent.product_id)


class VerifyIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    purchase_id: RuStorePurchaseId
    invoice_id: InvoiceId
    product_id: ProductId
    order_id: uuid.UUID | None = None
    sandbox: bool = False
    """True for a test purchase (the Pay SDK result's `sandbox`): verified on RuStore's sandbox."""

    def submission(self) -> Submission:
        return Submission(
            invoice_id=self.invoice_id,
            rustore_purchase_id=self.purchase_id,
            product_id=self.product_id,
            order_id=self.order_id,
            sandbox=self.sandbox,
        )


class PaymentOut(msgspec.Struct, frozen=True, rename="camel"):
    id: uuid.UUID
    status: str
    product_id: str
    invoice_id: int
    points_credited: int
    failure_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None
    status_url: str

    @classmethod
    def from_model(cls, purchase: Purchase) -> PaymentOut:
        return cls(
            id=purchase.id,
            status=purchase.status,
            product_id=purchase.product_id,
            invoice_id=purchase.invoice_id,
            points_credited=purchase.points_credited,
            failure_reason=purchase.failure_reason,
            created_at=purchase.created_at,
            updated_at=purchase.updated_at,
            completed_at=purchase.completed_at,
            status_url=f"/api/payments/{purchase.id}",
        )


class PaymentPage(msgspec.Struct, frozen=True, rename="camel"):
    items: list[PaymentOut]
    next_cursor: str | None
