from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.accounts.models import UserOwned
from core.db import Base, Timestamps
from core.rustore import SubscriptionPurchase
from core.subscriptions.derivation import Derived, derive


class Verification(StrEnum):
    """Recovery points of the `subscription.verify` job, as for one-time purchases."""

    PENDING = "pending"
    VERIFYING = "verifying"
    VERIFIED = "verified"  # RuStore's object backs it; from here on checks keep it current
    REJECTED = "rejected"  # RuStore or our checks said no (final)
    FAILED = "failed"  # retries ran out (final)


OPEN_VERIFICATION = frozenset({Verification.PENDING, Verification.VERIFYING})

PUBLIC_PROCESSING = {
    Verification.PENDING: "pending",
    Verification.VERIFYING: "processing",
    Verification.VERIFIED: "completed",
    Verification.REJECTED: "rejected",
    Verification.FAILED: "failed",
}


class Subscription(UserOwned, Timestamps, Base):
    """One RuStore subscription (unique on RuStore's purchase id or legacy token) and what
    RuStore last reported about it; `status` and `period` are derived from that report."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint(
            "verification IN ('pending', 'verifying', 'verified', 'rejected', 'failed')",
            name="verification_known",
        ),
        CheckConstraint(
            "status IS NULL OR status IN"
            " ('active', 'grace', 'on_hold', 'cancelled', 'expired', 'refunded')",
            name="status_known",
        ),
        CheckConstraint(
            "rustore_purchase_id IS NOT NULL OR subscription_token IS NOT NULL",
            name="rustore_reference",
        ),
        CheckConstraint("dunning_checks >= 0", name="dunning_checks_not_negative"),
        Index(
            "ix_subscriptions_next_check_at",
            "next_check_at",
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
        # Ops search (core/ops/search_repository.py): the newest in a state.
        Index(
            "ix_subscriptions_status_created_at", "status", text("created_at DESC"), text("id DESC")
        ),
        Index(
            "ix_subscriptions_verification_created_at",
            "verification",
            text("created_at DESC"),
            text("id DESC"),
        ),
    )

    product_id: Mapped[str] = mapped_column(String(64))
    rustore_purchase_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    """Pay SDK purchase id: read with v4."""
    subscription_token: Mapped[str | None] = mapped_column(String(128), unique=True)
    """BillingClient token: read with v3 when there is no purchase id."""
    invoice_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    """What a refund is issued against; from the app, or the first charge's orderId."""
    order_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    sandbox: Mapped[bool] = mapped_column(default=False)
    verification: Mapped[str] = mapped_column(String(16), default=Verification.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(128))
    verified_at: Mapped[dt.datetime | None]

    status: Mapped[str | None] = mapped_column(String(16))
    period: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[dt.datetime | None]
    expires_at: Mapped[dt.datetime | None]
    auto_renewing: Mapped[bool | None]
    payment_state: Mapped[int | None]
    cancel_reason: Mapped[int | None]
    rustore_order_id: Mapped[str | None] = mapped_column(String(64))
    order_sequence: Mapped[int | None]
    """Which charge `rustore_order_id` names; an observation of an earlier one is stale."""
    observed_at: Mapped[dt.datetime | None]
    """When we asked RuStore for `rustore`; an answer to an earlier question is stale."""
    rustore: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """RuStore's object verbatim (as decoded), the source of every derived field."""

    next_check_at: Mapped[dt.datetime | None]
    dunning_checks: Mapped[int] = mapped_column(default=0)
    refunded_at: Mapped[dt.datetime | None]
    refunded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )

    @property
    def processing(self) -> str:
        return PUBLIC_PROCESSING[Verification(self.verification)]

    @property
    def is_verified(self) -> bool:
        return self.verification == Verification.VERIFIED

    def current(self, now: dt.datetime) -> Derived | None:
        """The state at `now` from the stored report, so access ends exactly at the end date
        even before the next check runs; None before verification."""
        if self.rustore is None or not self.is_verified:
            return None
        purchase = msgspec.convert(self.rustore, SubscriptionPurchase, strict=False)
        return derive(purchase, now, refunded=self.refunded_at is not None)
