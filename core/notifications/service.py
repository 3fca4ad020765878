"""What the api and the scheduler do with notifications: accept, list, replay, sweep.

Accepting is kept to what RuStore's 3-second deadline allows: decrypt and check in memory, then
one INSERT … ON CONFLICT DO NOTHING. Everything that needs RuStore's API happens in the job.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit import service as audit
from core.audit.models import Target
from core.db import utcnow
from core.errors import InvalidRequestError, NotFoundError
from core.notifications.models import NotificationStatus, RuStoreNotification
from core.notifications.repository import NotificationRepository
from core.rustore import (
    AnyNotification,
    InvoiceStatusNotification,
    SubscriptionEventNotification,
    UnknownNotificationTypeError,
    WebhookCipher,
    WebhookDecryptError,
    WebhookFormatError,
)
from core.rustore.webhook import parse_envelope, parse_notification

NOTIFICATION_ID_MAX = 128
PURCHASE_ID_MAX = 64
EVENT_MAX = 32
INVOICE_ID_MAX = 2**63 - 1
STALE_AFTER = dt.timedelta(minutes=5)
"""A job sent this long ago whose notification is still unprocessed and untouched is lost."""


@dataclass(frozen=True)
class Delivery:
    """One authenticated webhook POST: the body as sent and what it decrypted to."""

    raw_body: bytes
    notification_id: str
    plaintext: bytes
    notification: AnyNotification


@cache
def _cipher(key: str) -> WebhookCipher:
    return WebhookCipher(key)


def open_delivery(body: bytes, key: str, *, sandbox: bool) -> Delivery:
    """Decrypt and type a webhook body, or refuse it with a 400 saying which check failed.

    The steps of `core.rustore.read_notification`, kept apart because the plaintext is stored
    verbatim. A `*_SANDBOX` type on the production endpoint (or the reverse) is refused too:
    each card has its own URL and key, so a mismatch means a misconfigured sender.
    """
    try:
        envelope = parse_envelope(body)
        plaintext = _cipher(key).decrypt(envelope.payload)
        notification = parse_notification(plaintext)
    except UnknownNotificationTypeError as exc:
        raise InvalidRequestError(str(exc), code="webhook_unknown_type") from None
    except WebhookDecryptError as exc:
        raise InvalidRequestError(str(exc), code="webhook_undecryptable") from None
    except WebhookFormatError as exc:
        raise InvalidRequestError(str(exc), code="webhook_malformed") from None
    if not 0 < len(envelope.id) <= NOTIFICATION_ID_MAX:
        raise InvalidRequestError(
            f"notification id must be 1 to {NOTIFICATION_ID_MAX} characters",
            code="webhook_malformed",
        )
    if notification.sandbox != sandbox:
        endpoint = "sandbox" if sandbox else "production"
        raise InvalidRequestError(
            f"{notification.notification_type} does not belong on the {endpoint} endpoint",
            code="webhook_wrong_endpoint",
        )
    return Delivery(body, envelope.id, plaintext, notification)


async def record(session: AsyncSession, delivery: Delivery) -> uuid.UUID | None:
    """Store a delivery once; the new row's id, or None when RuStore resent a known one.

    `enqueued_at` is set optimistically: the caller sends the job next and clears it with
    `mark_not_enqueued` if the queue is down, which is what the sweep looks for.
    """
    notification = delivery.notification
    return await NotificationRepository(session).insert_new(
        {
            "id": uuid.uuid4(),
            "notification_id": delivery.notification_id,
            "notification_type": notification.notification_type.value,
            "sandbox": notification.sandbox,
            "app_id": notification.app_id,
            **_references(notification),
            "raw_body": delivery.raw_body.decode(),
            "notification": msgspec.json.decode(delivery.plaintext),
            "status": NotificationStatus.RECEIVED,
            "enqueued_at": utcnow(),
        }
    )


def _references(notification: AnyNotification) -> dict[str, Any]:
    """The ids and event worth a column; a value that does not fit stays in the JSON only."""
    if isinstance(notification, InvoiceStatusNotification):
        data = notification.data
        invoice, purchase, event = data.invoice_id, data.purchase_id, data.status_new
    elif isinstance(notification, SubscriptionEventNotification):
        sub = notification.data
        invoice, purchase, event = sub.invoice_id, sub.purchase_id, sub.subscription_event_type
    else:
        return {}
    return {
        "invoice_id": _invoice_id(invoice),
        "purchase_id": _fitting(purchase, PURCHASE_ID_MAX),
        "event": _fitting(event, EVENT_MAX),
    }


def _invoice_id(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= INVOICE_ID_MAX else None


def _fitting(value: str | None, limit: int) -> str | None:
    return value if value is not None and len(value) <= limit else None


async def mark_not_enqueued(session: AsyncSession, notification_id: uuid.UUID) -> None:
    """The queue was unreachable: leave the notification for the sweep to send."""
    await NotificationRepository(session).mark_not_enqueued(notification_id)


async def journal(
    session: AsyncSession, status: NotificationStatus | None, before: uuid.UUID | None, limit: int
) -> list[RuStoreNotification]:
    return await NotificationRepository(session).page(status, before, limit)


async def reopen(
    session: AsyncSession, notification_id: uuid.UUID, *, actor: audit.Actor
) -> RuStoreNotification:
    """An admin's replay: make a notification processable again, audited (the caller commits,
    then sends the job); 404 if unknown."""
    journal = NotificationRepository(session)
    before = await journal.get(notification_id)
    if before is None:
        raise NotFoundError("No such notification.", code="notification_not_found")
    was = {"status": before.status, "outcome": before.outcome, "last_error": before.last_error}
    notification = await journal.reopen(notification_id, utcnow())
    assert notification is not None
    await audit.record(
        session, actor=actor, action="notification.replay", target_type=Target.NOTIFICATION,
        target_id=notification_id, before=was, after={"status": notification.status},
    )  # fmt: skip
    return notification


async def claim_unsent(session: AsyncSession, limit: int = 500) -> list[uuid.UUID]:
    """Notifications whose job never reached the queue, or went quiet; marked as re-sent."""
    return await NotificationRepository(session).claim_unsent(utcnow(), STALE_AFTER, limit)
