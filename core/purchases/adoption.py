"""Bringing Kopilka in line with an invoice RuStore reports, whoever brought it to our attention.

A notification and the daily reconciliation both end here: find Kopilka's purchase for the
invoice, record it for the intent's user if the app never reported it, and name the pipeline job
that settles it. The record goes through the app's own submission path, so the app's later report
of the same purchase finds this row (unique invoice id) instead of making a second one.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import ConflictError, KopilkaError
from core.purchases import service
from core.purchases.models import OPEN_STATES, Purchase, PurchaseState
from core.purchases.repository import PurchaseRepository
from core.queue import PURCHASE_SYNC, PURCHASE_VERIFY, Job
from core.rustore import InvoicePayment, InvoiceStatus

TAKEN_BACK = frozenset({InvoiceStatus.REFUNDED, InvoiceStatus.REVERSED})


async def purchase_for_invoice(
    session: AsyncSession,
    invoice: InvoicePayment,
    *,
    sandbox: bool,
    purchase_id_hint: str | None = None,
) -> tuple[Purchase | None, str | None]:
    """Kopilka's purchase for the invoice, recorded now if RuStore told us first; or why none."""
    repository = PurchaseRepository(session)
    purchase = await repository.by_rustore_ids(invoice.invoice_id, None)
    if purchase is not None:
        return purchase, None
    payload = invoice.developer_payload
    if not payload:
        return None, "the invoice carries no developer payload"
    intent = await repository.intent_by_payload(payload)
    if intent is None:
        return None, "the developer payload matches no purchase intent"
    submission = service.Submission(
        invoice_id=invoice.invoice_id,
        rustore_purchase_id=invoice.purchase_id or purchase_id_hint,
        product_id=intent.product_id,
        order_id=intent.order_id,
        sandbox=sandbox,
    )
    try:
        purchase, _ = await service.submit(session, intent.user_id, submission)
    except ConflictError:  # the app or a notification recorded it just now
        return await repository.by_rustore_ids(invoice.invoice_id, None), None
    except KopilkaError as exc:  # e.g. the product is no longer sold
        return None, exc.detail
    return purchase, None


def follow_up(purchase: Purchase, invoice: InvoicePayment) -> Job | None:
    """The pipeline job that brings the purchase in line with RuStore, if one is needed."""
    if purchase.state in OPEN_STATES:
        return PURCHASE_VERIFY
    if purchase.state == PurchaseState.CREDITED and invoice.status in TAKEN_BACK:
        return PURCHASE_SYNC
    return None
