"""What a `notification.process` job does: re-read RuStore, then tell the purchase pipeline.

The notification's own statuses are never trusted (a resent or reordered notification may say
CONFIRMED while RuStore already says REFUNDED, or the reverse): the invoice is read again from
RuStore's API and the purchase pipeline, which re-reads it once more, decides. So processing a
notification twice is harmless; the journal's conditional updates just make it rare.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.notifications.models import NotificationStatus, RuStoreNotification
from core.notifications.repository import NotificationRepository
from core.purchases import adoption
from core.purchases.models import Purchase
from core.queue import Job
from core.rustore import (
    InvoicePayment,
    NotificationType,
    RuStoreClient,
    RuStoreError,
    RuStoreNotFound,
    RuStorePermanentError,
    SubscriptionEventNotification,
)
from core.rustore.webhook import parse_notification
from core.subscriptions.pipeline import SubscriptionEvent

log = structlog.get_logger(__name__)

JobSink = Callable[[Job, str], object]
"""Sends a job with one id argument; raises when the queue is unreachable (the job retries)."""

SubscriptionRefresh = Callable[[SubscriptionEvent], Awaitable[str]]
"""Re-reads the subscription a notification names; returns a note for the journal."""
ERROR_MAX = 500


class RetryLater(Exception):
    """Processing failed in a way that may pass (RuStore or the queue unreachable)."""


@dataclass(frozen=True)
class Outcome:
    status: NotificationStatus
    note: str | None = None


class NotificationProcessor:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rustore: RuStoreClient,
        send: JobSink,
        *,
        refresh_subscription: SubscriptionRefresh,
    ) -> None:
        self.sessions = sessions
        self.rustore = rustore
        self.send = send
        self.refresh_subscription = refresh_subscription

    async def run(self, notification_id: uuid.UUID, *, last_attempt: bool) -> None:
        """Process one stored notification; raise `RetryLater` to be called again."""
        notification = await self._start(notification_id)
        if notification is None:
            log.info("notification.skipped", notification_id=str(notification_id), reason="done")
            return
        try:
            outcome = await self._process(notification)
        except Exception as exc:  # every failure is recorded on the row before it is retried
            await self._record_failure(notification_id, exc, last_attempt=last_attempt)
            return
        note = outcome.note[:ERROR_MAX] if outcome.note else None
        await self._write(lambda journal: journal.finish(notification_id, outcome.status, note))
        log.info(
            "notification.processed",
            notification_id=str(notification_id),
            status=outcome.status.value,
            note=note,
        )

    async def _record_failure(
        self, notification_id: uuid.UUID, exc: Exception, *, last_attempt: bool
    ) -> None:
        """Keep the error on the row; raise `RetryLater` unless this was the end of trying."""
        error = _describe(exc)[:ERROR_MAX]
        if not (last_attempt or _permanent(exc)):
            await self._write(lambda journal: journal.note_error(notification_id, error))
            raise RetryLater(error) from exc
        await self._write(lambda journal: journal.fail(notification_id, error))
        log.warning("notification.failed", notification_id=str(notification_id), error=error)

    async def _start(self, notification_id: uuid.UUID) -> RuStoreNotification | None:
        async with self.sessions() as session:
            notification = await NotificationRepository(session).start_attempt(notification_id)
            await session.commit()
        return notification

    async def _write(self, change: Callable[[NotificationRepository], Awaitable[object]]) -> None:
        async with self.sessions() as session:
            await change(NotificationRepository(session))
            await session.commit()

    async def _process(self, notification: RuStoreNotification) -> Outcome:
        match NotificationType(notification.notification_type).base:
            case NotificationType.INVOICE_STATUS:
                return await self._invoice_changed(notification)
            case NotificationType.SUBSCRIPTION_EVENT:
                return await self._subscription_changed(notification)
            case _:
                return Outcome(NotificationStatus.PROCESSED, "connection check")

    async def _subscription_changed(self, notification: RuStoreNotification) -> Outcome:
        if notification.purchase_id is None:
            return Outcome(NotificationStatus.IGNORED, "the notification names no purchase")
        event = SubscriptionEvent(
            notification.purchase_id, _product_code(notification), notification.sandbox
        )
        note = await self.refresh_subscription(event)
        return Outcome(NotificationStatus.PROCESSED, note)

    async def _invoice_changed(self, notification: RuStoreNotification) -> Outcome:
        if notification.invoice_id is None:
            return Outcome(NotificationStatus.IGNORED, "the notification names no invoice")
        invoice = await self.rustore.get_purchase(
            notification.invoice_id, sandbox=notification.sandbox
        )
        purchase, reason = await self._purchase_for(invoice, notification)
        if purchase is None:
            return Outcome(NotificationStatus.IGNORED, reason)
        job = adoption.follow_up(purchase, invoice)
        if job is None:
            return Outcome(
                NotificationStatus.PROCESSED,
                f"purchase {purchase.id} is {purchase.state}; RuStore says {invoice.status}",
            )
        self.send(job, str(purchase.id))
        return Outcome(NotificationStatus.PROCESSED, f"sent {job.actor} for purchase {purchase.id}")

    async def _purchase_for(
        self, invoice: InvoicePayment, notification: RuStoreNotification
    ) -> tuple[Purchase | None, str | None]:
        async with self.sessions() as session:
            found = await adoption.purchase_for_invoice(
                session,
                invoice,
                sandbox=notification.sandbox,
                purchase_id_hint=notification.purchase_id,
            )
            await session.commit()
        return found


def _product_code(notification: RuStoreNotification) -> str | None:
    """The product code of a stored subscription event (its `data` is JSON inside JSON)."""
    typed = parse_notification(msgspec.json.encode(notification.notification))
    return typed.data.product_code if isinstance(typed, SubscriptionEventNotification) else None


def _permanent(exc: Exception) -> bool:
    """RuStore refused for good; a not-found may be a brand-new invoice, so that is retried."""
    return isinstance(exc, RuStorePermanentError) and not isinstance(exc, RuStoreNotFound)


def _describe(exc: Exception) -> str:
    if isinstance(exc, RuStoreError):
        return f"RuStore: {exc.rustore_message or exc}"
    return f"{type(exc).__name__}: {exc}"
