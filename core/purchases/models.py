from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Identity, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from core.accounts.models import UserOwned
from core.db import Base, Timestamps


class PurchaseState(StrEnum):
    """Recovery points of the pipeline; each is committed before the next step starts."""

    PENDING = "pending"  # accepted, not yet looked at
    VERIFYING = "verifying"  # a worker is reading RuStore's invoice
    CONFIRMING = "confirming"  # two-stage purchase in PAID: :confirm sent or about to be
    CREDITED = "credited"  # points/entitlement granted (final)
    REJECTED = "rejected"  # RuStore or our checks said no (final)
    FAILED = "failed"  # retries ran out (final, never credited)
    REFUNDED = "refunded"  # RuStore refunded or reversed it after crediting (final)


FINAL_STATES = frozenset(
    {PurchaseState.CREDITED, PurchaseState.REJECTED, PurchaseState.FAILED, PurchaseState.REFUNDED}
)
OPEN_STATES = frozenset(PurchaseState) - FINAL_STATES

# What the app sees: a few stable words rather than our internal recovery points.
PUBLIC_STATUS = {
    PurchaseState.PENDING: "pending",
    PurchaseState.VERIFYING: "processing",
    PurchaseState.CONFIRMING: "processing",
    PurchaseState.CREDITED: "completed",
    PurchaseState.REJECTED: "rejected",
    PurchaseState.FAILED: "failed",
    PurchaseState.REFUNDED: "refunded",
}


class PurchaseIntent(UserOwned, Base):
    """Issued before the app opens RuStore's payment sheet; RuStore echoes the payload back."""

    __tablename__ = "purchase_intents"

    product_id: Mapped[str] = mapped_column(String(64))
    developer_payload: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime]

    @property
    def order_id(self) -> uuid.UUID:
        return self.id


class Purchase(UserOwned, Timestamps, Base):
    __tablename__ = "purchases"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'verifying', 'confirming', 'credited', 'rejected', 'failed',"
            " 'refunded')",
            name="state_known",
        ),
        CheckConstraint("points_credited >= 0", name="points_credited_not_negative"),
        Index(
            "ix_purchases_user_id_created_at", "user_id", text("created_at DESC"), text("id DESC")
        ),
        Index(
            "ix_purchases_open_updated_at",
            "updated_at",
            postgresql_where=text("state IN ('pending', 'verifying', 'confirming')"),
        ),
        # Ops search (core/ops/search_repository.py): the newest in a state.
        Index("ix_purchases_state_created_at", "state", text("created_at DESC"), text("id DESC")),
        # Purchases by state for /metrics and the ops overview (core/ops/repository.py): an
        # index-only count on an index a fraction of the size of the one above.
        Index("ix_purchases_state", "state"),
    )

    product_id: Mapped[str] = mapped_column(String(64))
    invoice_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    rustore_purchase_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    order_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    sandbox: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default=PurchaseState.PENDING)
    rustore_status: Mapped[str | None] = mapped_column(String(16))
    points_credited: Mapped[int] = mapped_column(default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=0)
    request_id: Mapped[str | None] = mapped_column(String(128))
    enqueued_at: Mapped[dt.datetime | None]
    paid_at: Mapped[dt.datetime | None]
    """When RuStore first reported PAID: RuStore reverses an unconfirmed hold 6 hours later."""
    completed_at: Mapped[dt.datetime | None]

    @property
    def status(self) -> str:
        return PUBLIC_STATUS[PurchaseState(self.state)]

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES


class PurchaseEventKind(StrEnum):
    ATTEMPT = "attempt"  # a delivery of `purchase.verify` started working on the purchase
    RUSTORE_CALL = "rustore_call"  # one logical RuStore call, with method, outcome and latency
    RETRY = "retry"  # the attempt ended undecided; the job is retried later


class PurchaseEvent(Base):
    """What the worker did to a purchase that no other column remembers: each attempt, each
    RuStore call and each retry (core/purchases/timeline.py writes and reads these)."""

    __tablename__ = "purchase_events"
    __table_args__ = (
        CheckConstraint("kind IN ('attempt', 'rustore_call', 'retry')", name="kind_known"),
        Index("ix_purchase_events_purchase_id_id", "purchase_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    purchase_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("purchases.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int]
    method: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(16))
    """A RuStore call's outcome: `ok`, `transient`, `not_found`, `permanent`, `auth`, `error`."""
    latency_ms: Mapped[float | None]
    detail: Mapped[str | None] = mapped_column(String(500))
