from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UUIDPrimaryKey


class NotificationStatus(StrEnum):
    RECEIVED = "received"  # stored; a job is (or will be, by the sweep) on its way
    PROCESSED = "processed"  # acted on: the purchase pipeline has been told
    FAILED = "failed"  # processing gave up; `last_error` says why, an admin may replay it
    IGNORED = "ignored"  # nothing to do (yet): `outcome` says why


class RuStoreNotification(UUIDPrimaryKey, Base):
    """One notification RuStore delivered, stored once however often it is resent.

    The raw body and the decrypted JSON are kept verbatim, so work added later (subscriptions,
    whose events are stored as `ignored` for now) can replay the journal without RuStore.
    """

    __tablename__ = "rustore_notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('received', 'processed', 'failed', 'ignored')", name="status_known"
        ),
        Index("ix_rustore_notifications_received_at", text("received_at DESC"), "id"),
        Index(
            "ix_rustore_notifications_status_received_at",
            "status",
            text("received_at DESC"),
            "id",
        ),
        Index(
            "ix_rustore_notifications_unprocessed",
            "updated_at",
            postgresql_where=text("status = 'received'"),
        ),
    )

    notification_id: Mapped[str] = mapped_column(String(128), unique=True)
    """RuStore's `id`: the same in every redelivery of one notification."""
    notification_type: Mapped[str] = mapped_column(String(32))
    sandbox: Mapped[bool]
    app_id: Mapped[int] = mapped_column(BigInteger)
    invoice_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    purchase_id: Mapped[str | None] = mapped_column(String(64))
    """RuStore's purchase id (a subscription's, for subscription events)."""
    event: Mapped[str | None] = mapped_column(String(32))
    """`status_new` of an invoice, `subscription_event_type` of a subscription event."""
    raw_body: Mapped[str] = mapped_column(Text)
    notification: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The decrypted payload as RuStore sent it (`data` stays a JSON string if it was one)."""
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.RECEIVED)
    outcome: Mapped[str | None] = mapped_column(String(500))
    """What processing did, or why it ignored the notification."""
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    enqueued_at: Mapped[dt.datetime | None]
    """When a job was last sent; None when sending failed and the sweep must send it."""
    processed_at: Mapped[dt.datetime | None]
