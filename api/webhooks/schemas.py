from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from core.notifications.models import RuStoreNotification


class WebhookAck(msgspec.Struct, frozen=True):
    """RuStore reads only the status code; the body says whether this delivery was new."""

    status: str


class NotificationOut(msgspec.Struct, frozen=True, rename="camel"):
    id: uuid.UUID
    notification_id: str
    notification_type: str
    sandbox: bool
    app_id: int
    invoice_id: int | None
    purchase_id: str | None
    event: str | None
    status: str
    outcome: str | None
    attempts: int
    last_error: str | None
    received_at: dt.datetime
    processed_at: dt.datetime | None
    notification: dict[str, Any]
    """The decrypted payload as RuStore sent it."""

    @classmethod
    def from_model(cls, row: RuStoreNotification) -> NotificationOut:
        return cls(
            id=row.id,
            notification_id=row.notification_id,
            notification_type=row.notification_type,
            sandbox=row.sandbox,
            app_id=row.app_id,
            invoice_id=row.invoice_id,
            purchase_id=row.purchase_id,
            event=row.event,
            status=row.status,
            outcome=row.outcome,
            attempts=row.attempts,
            last_error=row.last_error,
            received_at=row.received_at,
            processed_at=row.processed_at,
            notification=row.notification,
        )


class NotificationPage(msgspec.Struct, frozen=True, rename="camel"):
    items: list[NotificationOut]
    next_before: uuid.UUID | None
    """Pass as `before` for the next (older) page; null on the last page."""
