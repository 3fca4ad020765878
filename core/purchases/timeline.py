"""A purchase's history for ops: what happened to it, in order, and how long RuStore took.

    class TimelineEvent(msgspec.Struct): at, kind, outcome, detail, latency_ms, attempt, method
    async def purchase_timeline(session, purchase_id: uuid.UUID) -> list[TimelineEvent]
    class PurchaseEventRecorder(engine)             # the worker's side, see below

Most of the story is already in columns that exist for other reasons, and is derived from them
when read: submitted (`created_at`, the request id), enqueued (`enqueued_at`), RuStore reported
PAID (`paid_at`), credit and refund (the ledger entries keyed by the purchase), how it ended
(`state`, `failure_reason`, `completed_at`), the notifications RuStore sent about its invoice (the
notification journal) and what admins did to it (`audit_log`).

Only what nothing else stores is recorded, in `purchase_events`, and only by the worker (never
on the api's accept path, which must stay one INSERT): each attempt, each RuStore call with its
method, outcome and latency, and each retry with its reason.

Why the records of one attempt are written together, in one INSERT when the attempt ends
(`PurchaseEventRecorder.held`), however it ends (finished, retried, raised): the pipeline never
holds a transaction across an HTTP call (each recovery point is its own short commit), so there
is no enclosing transaction to join, and a write of its own per call cost a round trip each, about
a tenth of the worker's CPU per purchase. Written apart from the recovery points, the records
cannot be taken away by a step that fails later and rolls back, so a failed call is on the
timeline even when the attempt that made it left no other trace. What is given up: a worker
killed in the middle of an attempt loses the records of that attempt's calls; the attempt itself
is still there (the statement that counts it records it), followed by no call, which is how a
killed attempt reads. Recording is best effort: if the insert itself fails, that is logged and
the purchase carries on, since a diagnostic row must never fail a payment.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from core.audit import service as audit
from core.audit.models import Target
from core.db import session_driver, utcnow
from core.errors import NotFoundError
from core.notifications.models import RuStoreNotification
from core.notifications.repository import NotificationRepository
from core.points.models import EntryKind, EntrySource
from core.points.repository import LedgerStatements
from core.purchases.models import Purchase, PurchaseEvent, PurchaseEventKind, PurchaseState
from core.purchases.repository import (
    NewEvent,
    PurchaseEventRepository,
    PurchaseRepository,
    purchase_statements,
)
from core.rustore import RuStoreError

log = structlog.get_logger(__name__)

T = TypeVar("T")
DETAIL_MAX = 500
NOTIFICATIONS_SHOWN = 50
AUDIT_SHOWN = 100


class TimelineEvent(msgspec.Struct, frozen=True):
    at: dt.datetime
    kind: str
    """submitted, enqueued, attempt, rustore_call, retry, paid, credit, finished, refund,
    clawback, notification, admin."""
    outcome: str | None = None
    detail: str | None = None
    latency_ms: float | None = None
    attempt: int | None = None
    method: str | None = None
    """The RuStore client method of a `rustore_call` (get_purchase, confirm_purchase…)."""


# Events at the same instant keep the pipeline's order (submitted before enqueued, etc.).
ORDER = {
    kind: rank
    for rank, kind in enumerate(
        ("submitted", "enqueued", "attempt", "rustore_call", "paid", "credit", "retry",
         "finished", "notification", "refund", "clawback", "admin")
    )
}  # fmt: skip


async def purchase_timeline(session: AsyncSession, purchase_id: uuid.UUID) -> list[TimelineEvent]:
    """Every event of one purchase (any user's), oldest first; 404 for an unknown id."""
    purchase = await PurchaseRepository(session).get(purchase_id)
    if purchase is None:
        raise NotFoundError(f"No purchase {purchase_id}", code="purchase_not_found")
    events = [
        *_from_purchase(purchase),
        *[_from_event(row) for row in await PurchaseEventRepository(session).of(purchase_id)],
        *await _from_ledger(session, purchase),
        *await _from_notifications(session, purchase),
        *await _from_audit(session, purchase_id),
    ]
    return sorted(events, key=lambda event: (event.at, ORDER[event.kind]))


def _from_purchase(purchase: Purchase) -> list[TimelineEvent]:
    events = [
        TimelineEvent(
            purchase.created_at, "submitted", detail=f"request {purchase.request_id or '-'}"
        )
    ]
    if purchase.enqueued_at is not None:
        events.append(TimelineEvent(purchase.enqueued_at, "enqueued"))
    if purchase.paid_at is not None:
        events.append(TimelineEvent(purchase.paid_at, "paid", detail="RuStore holds the payment"))
    ended = purchase.state in (PurchaseState.REJECTED, PurchaseState.FAILED)
    if ended and purchase.completed_at is not None:
        events.append(
            TimelineEvent(
                purchase.completed_at, "finished", purchase.state, purchase.failure_reason
            )
        )
    if purchase.state == PurchaseState.REFUNDED:  # final: nothing updates the row after this
        events.append(
            TimelineEvent(purchase.updated_at, "refund", purchase.state, purchase.failure_reason)
        )
    return events


def _from_event(row: PurchaseEvent) -> TimelineEvent:
    return TimelineEvent(
        row.at, row.kind, row.outcome, row.detail, row.latency_ms, row.attempt, row.method
    )


async def _from_ledger(session: AsyncSession, purchase: Purchase) -> list[TimelineEvent]:
    ledger = LedgerStatements(await session_driver(session))
    source_id = str(purchase.id)
    events = []
    credit = await ledger.find_entry(EntrySource.PURCHASE, source_id, EntryKind.CREDIT)
    if credit is not None:
        events.append(TimelineEvent(credit.created_at, "credit", "ok", f"+{credit.amount} points"))
    clawback = await ledger.find_entry(EntrySource.PURCHASE, source_id, EntryKind.CLAWBACK)
    if clawback is not None:
        detail = f"{clawback.amount} points taken back"
        events.append(TimelineEvent(clawback.created_at, "clawback", "ok", detail))
    return events


async def _from_notifications(session: AsyncSession, purchase: Purchase) -> list[TimelineEvent]:
    rows = await NotificationRepository(session).about_invoice(
        purchase.invoice_id, NOTIFICATIONS_SHOWN
    )
    return [
        TimelineEvent(row.received_at, "notification", row.status, _summary(row)) for row in rows
    ]


def _summary(row: RuStoreNotification) -> str:
    parts = (row.notification_type, row.event, row.outcome, row.last_error)
    return " · ".join(part for part in parts if part)


async def _from_audit(session: AsyncSession, purchase_id: uuid.UUID) -> list[TimelineEvent]:
    entries = await audit.list_entries(
        session, target_type=Target.PURCHASE, target_id=str(purchase_id), limit=AUDIT_SHOWN
    )
    return [
        TimelineEvent(
            entry.at,
            "admin",
            entry.action,
            f"by {entry.actor_email or entry.actor_user_id}"
            + (f": {entry.reason}" if entry.reason else ""),
        )
        for entry in entries
    ]


_held: contextvars.ContextVar[list[NewEvent] | None] = contextvars.ContextVar(
    "held_purchase_events", default=None
)


class PurchaseEventRecorder:
    """The worker's record of RuStore calls and retries (see the module docstring); attempts are
    recorded by the statement that counts them (`PurchaseStatements.start_attempt`).

    recorder = PurchaseEventRecorder(engine)
    async with recorder.held():   # one INSERT for the block's records, when it ends
        invoice = await recorder.call(purchase, "get_purchase", rustore.get_purchase(...))
        await recorder.retry(purchase, reason)

    Outside `held`, each record is written at once.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Keep the records this task makes inside the block and write them together when it
        ends, however it ends. The records live in a context variable, so concurrent jobs on one
        event loop (each its own task) keep theirs apart."""
        records: list[NewEvent] = []
        token = _held.set(records)
        try:
            yield
        finally:
            _held.reset(token)
            if records:
                await self._write(records)

    async def call(self, purchase: Purchase, method: str, call: Awaitable[T]) -> T:
        """Await one RuStore call and record it, whether it answered or raised."""
        at, started = utcnow(), time.perf_counter()
        outcome, detail = "ok", None
        try:
            return await call
        except RuStoreError as exc:
            outcome, detail = exc.outcome, str(exc)
            raise
        except BaseException as exc:
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
            raise
        finally:
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            await self._record(
                _event(purchase, PurchaseEventKind.RUSTORE_CALL, at, method=method,
                       outcome=outcome, latency_ms=latency_ms, detail=detail)
            )  # fmt: skip

    async def retry(self, purchase: Purchase, reason: str) -> None:
        await self._record(_event(purchase, PurchaseEventKind.RETRY, utcnow(), detail=reason))

    async def _record(self, event: NewEvent) -> None:
        held = _held.get()
        if held is None:
            await self._write([event])
        else:
            held.append(event)

    async def _write(self, events: list[NewEvent]) -> None:
        try:
            async with purchase_statements(self.engine) as statements:
                await statements.add_events(events)
        except Exception:
            log.exception("purchase.event_not_recorded", purchase_id=str(events[0]["purchase_id"]))


def _event(
    purchase: Purchase,
    kind: PurchaseEventKind,
    at: dt.datetime,
    *,
    method: str | None = None,
    outcome: str | None = None,
    latency_ms: float | None = None,
    detail: str | None = None,
) -> NewEvent:
    return {
        "purchase_id": purchase.id,
        "at": at,
        "kind": kind,
        "attempt": purchase.attempts,
        "method": method,
        "outcome": outcome,
        "latency_ms": latency_ms,
        "detail": detail[:DETAIL_MAX] if detail else None,
    }
