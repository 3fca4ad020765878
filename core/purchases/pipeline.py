"""The verify → confirm → credit pipeline a `purchase.verify` job runs.

Every step is a short transaction that records where the purchase got (a recovery point), and
every decision re-reads RuStore, so a redelivered or duplicated message resumes instead of
repeating: a final purchase is left alone without calling RuStore, a repeated confirm that RuStore
refuses ("Purchase status must be PAID") is reconciled by re-reading, and the credit is one
conditional state change plus a ledger entry whose unique key forbids a second one.

Nothing is credited unless RuStore reports the purchase CONFIRMED (after our confirm, for a
two-stage purchase) for our app, the claimed product, the expected amount, and a developer
payload we issued; points go to the user that payload was issued to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from core import metrics
from core.catalogue.models import Product
from core.db import create_sessionmaker, driver_transaction, utcnow
from core.failpoints import failpoint
from core.points import service as points
from core.points.models import EntrySource
from core.purchases.models import OPEN_STATES, Purchase, PurchaseState
from core.purchases.repository import (
    PurchaseRepository,
    PurchaseStatements,
    purchase_statements,
)
from core.purchases.timeline import PurchaseEventRecorder
from core.rustore import (
    InvoicePayment,
    InvoiceStatus,
    RuStoreAuthError,
    RuStoreClient,
    RuStoreError,
    RuStoreNotFound,
    RuStorePermanentError,
)

log = structlog.get_logger(__name__)

NOT_FOUND_ATTEMPTS = 3
"""RuStore may not list a brand-new invoice at once; after this many tries the id is bogus."""
FORBIDDEN = 403

REFUSED = {
    InvoiceStatus.REJECTED: "RuStore rejected the payment",
    InvoiceStatus.CANCELLED: "the payment was cancelled",
    InvoiceStatus.EXPIRED: "the payment expired before it was completed",
    InvoiceStatus.REVERSED: "RuStore reversed the held payment",
    InvoiceStatus.REFUNDED: "RuStore refunded the payment",
}


AWAITING_PURCHASE_ID = (
    "RuStore holds the payment, but no report or notification has named its purchase id, "
    "which :confirm needs; waiting for the app's report (RuStore releases the hold after 6 h)"
)


class RetryLater(Exception):
    """The purchase cannot be decided yet (not paid, RuStore unreachable); the job retries."""


@dataclass(frozen=True)
class Verdict:
    """Whether RuStore's invoice backs the purchase, and who owns it."""

    owner_id: uuid.UUID | None
    product: Product | None
    problem: str | None


class PurchaseVerifier:
    """Each step but the credit is one statement on the driver connection (`purchase_statements`);
    the credit is the state change and the ledger's statements in one transaction on it."""

    def __init__(self, engine: AsyncEngine, rustore: RuStoreClient, app_id: int) -> None:
        self.engine = engine
        self.rustore = rustore
        self.app_id = app_id
        self.events = PurchaseEventRecorder(engine)

    async def run(self, purchase_id: uuid.UUID, *, last_attempt: bool) -> None:
        """Take the purchase as far as it can go now; raise `RetryLater` to be called again."""
        purchase = await self._start(purchase_id)
        if purchase is None:
            log.info("purchase.verify.skipped", purchase_id=str(purchase_id), reason="final")
            return
        # One line per delivery that does work: the timeline, and the proof in tests that a
        # redelivery resumed rather than repeated.
        log.info("purchase.verify.attempt", purchase_id=str(purchase_id), attempt=purchase.attempts)
        async with self.events.held():  # the attempt's calls and retry, in one INSERT at its end
            try:
                await self._advance(purchase)
            except (RetryLater, RuStoreError) as exc:
                await self._retry_or_finish(purchase, exc, last_attempt=last_attempt)

    async def _read(self, purchase: Purchase) -> InvoicePayment:
        return await self.events.call(
            purchase,
            "get_purchase",
            self.rustore.get_purchase(purchase.invoice_id, sandbox=purchase.sandbox),
        )

    async def _move_on(self, purchase_id: uuid.UUID, **values: object) -> Purchase | None:
        """One conditional state change from an open state, a recovery point of its own; None
        when the purchase was no longer open."""
        async with purchase_statements(self.engine) as statements:
            return await statements.transition(purchase_id, OPEN_STATES, **values)

    async def _retry_or_finish(
        self, purchase: Purchase, exc: RetryLater | RuStoreError, *, last_attempt: bool
    ) -> None:
        """Finish the purchase when trying again cannot change the answer; else `RetryLater`."""
        unreadable = _unreadable_reason(exc)
        if unreadable is not None and purchase.attempts >= NOT_FOUND_ATTEMPTS:
            await self._finish(purchase, PurchaseState.REJECTED, unreadable)
        elif last_attempt or (isinstance(exc, RuStorePermanentError) and unreadable is None):
            await self._finish(purchase, PurchaseState.FAILED, _reason(exc))
        else:
            await self.events.retry(purchase, _reason(exc))
            raise RetryLater(_reason(exc)) from exc

    async def _start(self, purchase_id: uuid.UUID) -> Purchase | None:
        async with purchase_statements(self.engine) as statements:
            return await statements.start_attempt(purchase_id, utcnow())

    async def _advance(self, purchase: Purchase) -> None:
        invoice = await self._read(purchase)
        verdict = await self._check(purchase, invoice)
        if verdict.problem is not None:
            await self._finish(purchase, PurchaseState.REJECTED, verdict.problem, invoice)
            return
        assert verdict.owner_id is not None
        assert verdict.product is not None
        status = invoice.status
        if status is InvoiceStatus.PAID and not (
            invoice.purchase_id or purchase.rustore_purchase_id
        ):
            await self._hold_until_purchase_id(purchase, invoice)
            return
        if status is InvoiceStatus.PAID:
            invoice = await self._confirm(purchase, invoice)
            status = invoice.status
        if status is InvoiceStatus.CONFIRMED:
            await self._credit(purchase, verdict.owner_id, verdict.product, invoice)
        elif status in REFUSED:
            await self._finish(purchase, PurchaseState.REJECTED, REFUSED[status], invoice)
        elif status in (InvoiceStatus.CREATED, InvoiceStatus.EXECUTED, InvoiceStatus.PAID):
            raise RetryLater(f"RuStore reports {status.value}: not paid yet")
        else:
            await self._finish(
                purchase,
                PurchaseState.REJECTED,
                f"unexpected RuStore status {invoice.invoice_status!r}",
                invoice,
            )

    async def _check(self, purchase: Purchase, invoice: InvoicePayment) -> Verdict:
        """Compare what RuStore says with what we issued; never with what the client claimed."""
        async with purchase_statements(self.engine) as statements:
            product, intent = await statements.product_and_intent(
                purchase.product_id, invoice.developer_payload
            )
        order = invoice.order
        if invoice.app_id != self.app_id:
            problem = f"invoice belongs to app {invoice.app_id}, not {self.app_id}"
        elif order is None or order.item_code != purchase.product_id:
            reported = order.item_code if order else None
            problem = f"RuStore reports product {reported!r}, not {purchase.product_id!r}"
        elif product is None:
            problem = f"product {purchase.product_id!r} is not in the catalogue"
        elif product.price_kopecks is not None and order.amount_create != product.price_kopecks:
            problem = (
                f"RuStore charged {order.amount_create} kopecks, expected {product.price_kopecks}"
            )
        elif intent is None or intent.product_id != purchase.product_id:
            problem = "developer payload does not match a purchase intent for this product"
        elif (
            purchase.rustore_purchase_id
            and invoice.purchase_id
            and purchase.rustore_purchase_id != invoice.purchase_id
        ):
            problem = "RuStore purchase id does not match the invoice"
        else:
            return Verdict(intent.user_id, product, None)
        return Verdict(None, None, problem)

    async def _hold_until_purchase_id(self, purchase: Purchase, invoice: InvoicePayment) -> None:
        """Park a held two-stage payment that nobody has named the purchase id of.

        `:confirm` takes RuStore's purchase id, which the invoice list and the v2 invoice do not
        carry; only the app's report or a notification does. A purchase found by reconciliation
        alone therefore waits here, in `confirming` with the reason shown, instead of spending its
        retries: the app's report (`service.submit`) fills the id in and sends the job again, and
        the held-payment watchdog re-reads it meanwhile, finishing it when RuStore reverses the
        hold after 6 h (the customer is then not charged).
        """
        await self._move_on(
            purchase.id,
            state=PurchaseState.CONFIRMING,
            rustore_status=invoice.status.value,
            paid_at=purchase.paid_at or utcnow(),
            failure_reason=AWAITING_PURCHASE_ID,
        )
        log.warning("purchase.awaiting_purchase_id", purchase_id=str(purchase.id))

    async def _confirm(self, purchase: Purchase, invoice: InvoicePayment) -> InvoicePayment:
        """Confirm a held two-stage payment; a refused repeat is reconciled by re-reading."""
        purchase_ref = invoice.purchase_id or purchase.rustore_purchase_id
        assert purchase_ref is not None  # see _hold_until_purchase_id
        await self._move_on(
            purchase.id,
            state=PurchaseState.CONFIRMING,
            rustore_status=invoice.status.value,
            paid_at=purchase.paid_at or utcnow(),
        )
        try:
            await self.events.call(
                purchase,
                "confirm_purchase",
                self.rustore.confirm_purchase(purchase_ref, sandbox=purchase.sandbox),
            )
        except RuStorePermanentError as exc:
            if isinstance(exc, RuStoreNotFound):
                raise
            log.info(
                "purchase.confirm.refused",
                purchase_id=str(purchase.id),
                message=exc.rustore_message,
            )
            return await self._read(purchase)
        failpoint("purchase.after_confirm")
        return await self._read(purchase)

    async def _credit(
        self, purchase: Purchase, owner_id: uuid.UUID, product: Product, invoice: InvoicePayment
    ) -> None:
        async with driver_transaction(self.engine) as connection:
            credited = await PurchaseStatements(connection).transition(
                purchase.id,
                OPEN_STATES,
                state=PurchaseState.CREDITED,
                user_id=owner_id,
                points_credited=product.points,
                rustore_status=invoice.status.value,
                failure_reason=None,
                completed_at=utcnow(),
            )
            if credited is not None and product.points:
                await points.credit(
                    connection,
                    owner_id,
                    product.points,
                    source=EntrySource.PURCHASE,
                    source_id=str(purchase.id),
                    reason=f"purchase of {product.product_id}",
                )
        failpoint("purchase.after_commit")
        if credited is None:
            # A concurrent delivery of the same purchase got there first and credited it.
            log.info("purchase.credit.already_final", purchase_id=str(purchase.id))
            return
        metrics.count_payment(PurchaseState.CREDITED)
        if owner_id != purchase.user_id:
            log.warning("purchase.owner_differs_from_submitter", purchase_id=str(purchase.id))
        log.info("purchase.credited", purchase_id=str(purchase.id), points=product.points)

    async def _finish(
        self,
        purchase: Purchase,
        state: PurchaseState,
        reason: str,
        invoice: InvoicePayment | None = None,
    ) -> None:
        finished = await self._move_on(
            purchase.id,
            state=state,
            failure_reason=reason[:500],
            rustore_status=invoice.status.value if invoice else purchase.rustore_status,
            completed_at=utcnow(),
        )
        if finished is not None:
            metrics.count_payment(state)
        log.info(
            "purchase.finished", purchase_id=str(purchase.id), state=state.value, reason=reason
        )


def _unreadable_reason(exc: BaseException) -> str | None:
    """Why RuStore will not show us the invoice, when that is how it answered; else None.

    Both answers may be a brand-new invoice RuStore has not indexed yet, so they are retried a few
    times first. A 403 after a fresh token (the client re-authenticates once on 403) is how RuStore
    refuses an object of another app; a key that lost access to our own app answers the same, so
    the reason names both for whoever reads it on the dashboard.
    """
    if isinstance(exc, RuStoreNotFound):
        return "RuStore does not know this invoice"
    if isinstance(exc, RuStoreAuthError) and exc.status == FORBIDDEN:
        return "RuStore refuses access to this invoice: another app's, or our key cannot read it"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuStoreError):
        return f"RuStore: {exc.rustore_message or exc}"
    return str(exc)


class RefundSync:
    """Re-reads a credited purchase and, when RuStore refunded or reversed it, takes points back."""

    def __init__(self, engine: AsyncEngine, rustore: RuStoreClient) -> None:
        self.engine = engine
        self.sessions = create_sessionmaker(engine)
        self.rustore = rustore
        self.events = PurchaseEventRecorder(engine)

    async def run(self, purchase_id: uuid.UUID) -> None:
        async with self.sessions() as session:
            purchase = await PurchaseRepository(session).get(purchase_id)
        if purchase is None or purchase.state != PurchaseState.CREDITED:
            return
        invoice = await self.events.call(
            purchase,
            "get_purchase",
            self.rustore.get_purchase(purchase.invoice_id, sandbox=purchase.sandbox),
        )
        if invoice.status not in (InvoiceStatus.REFUNDED, InvoiceStatus.REVERSED):
            return
        reason = REFUSED[invoice.status]
        async with driver_transaction(self.engine) as connection:
            refunded = await PurchaseStatements(connection).transition(
                purchase.id,
                {PurchaseState.CREDITED},
                state=PurchaseState.REFUNDED,
                rustore_status=invoice.status.value,
                failure_reason=reason,
            )
            if refunded is not None and purchase.points_credited:
                await points.claw_back(
                    connection,
                    purchase.user_id,
                    purchase.points_credited,
                    source=EntrySource.PURCHASE,
                    source_id=str(purchase.id),
                    reason=reason,
                )
        log.info("purchase.refunded", purchase_id=str(purchase.id), points=purchase.points_credited)
