"""Daily reconciliation: walk RuStore's invoice list for a day and settle what Kopilka missed.

An app can crash between payment and report, and a notification can be lost (RuStore stops
retrying after 36 hours, and a rotated key refuses the old ones). The invoice list is the record
of what was paid: every paid, confirmed, refunded or reversed invoice of the day is matched to
Kopilka's purchase (recorded from its developer payload if the app never reported it) and the
pipeline job that settles it is sent. Sending a job for a purchase already in line is harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.purchases import adoption
from core.queue import Job
from core.rustore import InvoiceStatus, RuStoreClient

log = structlog.get_logger(__name__)

RECONCILED_STATUSES = (
    InvoiceStatus.PAID,
    InvoiceStatus.CONFIRMED,
    InvoiceStatus.REFUNDED,
    InvoiceStatus.REVERSED,
)
MOSCOW = dt.timezone(dt.timedelta(hours=3))
"""RuStore dates invoices in Moscow time; "yesterday" is Moscow's yesterday."""


@dataclass
class Report:
    invoices: int = 0
    jobs_sent: int = 0
    unmatched: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        unmatched = sum(self.unmatched.values())
        return f"{self.invoices} invoices, {self.jobs_sent} jobs sent, {unmatched} unmatched"


def previous_day(now: dt.datetime) -> dt.date:
    return (now.astimezone(MOSCOW) - dt.timedelta(days=1)).date()


async def reconcile_day(
    sessions: async_sessionmaker[AsyncSession],
    rustore: RuStoreClient,
    send: Callable[[Job, str], object],
    day: dt.date,
) -> Report:
    """Settle every invoice of `day` RuStore reports as paid or taken back."""
    report = Report()
    async for invoice in rustore.iter_invoices(day, RECONCILED_STATUSES, page_size=100):
        report.invoices += 1
        async with sessions() as session:
            purchase, reason = await adoption.purchase_for_invoice(session, invoice, sandbox=False)
            await session.commit()
        if purchase is None:
            reason = reason or "unknown"
            report.unmatched[reason] = report.unmatched.get(reason, 0) + 1
            continue
        if job := adoption.follow_up(purchase, invoice):
            send(job, str(purchase.id))
            report.jobs_sent += 1
    log.info("reconciliation.finished", day=day.isoformat(), report=str(report))
    return report
