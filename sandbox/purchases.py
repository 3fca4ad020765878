"""One-time purchases (invoices): their life cycle and how RuStore renders them.

Life cycle (rustore-api.md §5.1): CREATED → EXECUTED → CONFIRMED (one-stage) or PAID (two-stage),
or REJECTED / CANCELLED / EXPIRED; PAID → CONFIRMED by a confirm, REVERSED by a cancel or, with no
confirm, six hours after payment (by the sandbox clock); CONFIRMED → REFUNDED.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from sandbox.clock import legacy_time, msk_time
from sandbox.envelope import ApiError, Json

ORG_NAME = 'ООО "Копилка"'  # noqa: RUF001 - Cyrillic on purpose, as in the documented example

# Unconfirmed two-stage payments are released after 6 h (gitflic rustore-godot-pay wiki, §5.1).
HOLD_LIMIT = timedelta(hours=6)


class InvoiceStatus(StrEnum):
    CREATED = "CREATED"
    EXECUTED = "EXECUTED"
    CONFIRMED = "CONFIRMED"
    PAID = "PAID"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REVERSED = "REVERSED"
    REFUNDED = "REFUNDED"


UNPAID_FAILURES = frozenset(
    {InvoiceStatus.REJECTED, InvoiceStatus.CANCELLED, InvoiceStatus.EXPIRED}
)


@dataclass
class Invoice:
    invoice_id: int
    purchase_id: str
    order_id: str
    app_id: int
    owner_code: int
    product_code: str
    amount: int
    two_stage: bool
    test: bool
    developer_payload: str | None
    user_id: int
    created_at: datetime
    status: InvoiceStatus = InvoiceStatus.CREATED
    executed_at: datetime | None = None
    paid_at: datetime | None = None
    refunded_at: datetime | None = None

    @property
    def purchase_token(self) -> str:
        """Legacy token, "invoiceId.userId" as the C# and Go clients read it (UNCERTAIN)."""
        return f"{self.invoice_id}.{self.user_id}"

    @property
    def reversal_due(self) -> datetime | None:
        if self.status is InvoiceStatus.PAID and self.paid_at is not None:
            return self.paid_at + HOLD_LIMIT
        return None


@dataclass(frozen=True)
class InvoiceChanged:
    """A status change, the source of an INVOICE_STATUS notification."""

    invoice: Invoice
    old: InvoiceStatus
    new: InvoiceStatus
    at: datetime


class InvoiceBook:
    """All invoices, with the transitions that the API, the control API and the clock drive."""

    def __init__(self, emit: Callable[[InvoiceChanged], None]) -> None:
        self._emit = emit
        self.by_id: dict[int, Invoice] = {}
        self.by_purchase_id: dict[str, Invoice] = {}
        # The reversals to come of held (PAID) invoices, earliest first: `due` runs before every
        # request, and must not walk every invoice, nor every held one (a burst of two-stage
        # purchases holds hundreds until the worker confirms them). An entry whose invoice has
        # moved on since is dropped when it reaches the top.
        self._reversals: list[tuple[datetime, int]] = []

    def add(self, invoice: Invoice) -> None:
        self.by_id[invoice.invoice_id] = invoice
        self.by_purchase_id[invoice.purchase_id] = invoice

    def clear(self) -> None:
        self.by_id.clear()
        self.by_purchase_id.clear()
        self._reversals.clear()

    def find_token(self, token: str) -> Invoice | None:
        head = token.split(".", 1)[0]
        invoice = self.by_id.get(int(head)) if head.isdigit() else None
        return invoice if invoice is not None and invoice.purchase_token == token else None

    def find(self, ref: str) -> Invoice | None:
        """By invoiceId, purchaseId or purchase token (for the control API)."""
        if ref.isdigit():
            return self.by_id.get(int(ref))
        return self.by_purchase_id.get(ref) or self.find_token(ref)

    def _move(self, invoice: Invoice, new: InvoiceStatus, at: datetime) -> None:
        old = invoice.status
        invoice.status = new
        due = invoice.reversal_due
        if due is not None:
            heapq.heappush(self._reversals, (due, invoice.invoice_id))
        self._emit(InvoiceChanged(invoice, old, new, at))

    def pay(self, invoice: Invoice, at: datetime) -> None:
        """The user pays: EXECUTED, then CONFIRMED or (two-stage) PAID, one notification each."""
        self._require(invoice, {InvoiceStatus.CREATED, InvoiceStatus.EXECUTED})
        if invoice.status is InvoiceStatus.CREATED:
            invoice.executed_at = at
            self._move(invoice, InvoiceStatus.EXECUTED, at)
        invoice.paid_at = at
        self._move(
            invoice, InvoiceStatus.PAID if invoice.two_stage else InvoiceStatus.CONFIRMED, at
        )

    def fail(self, invoice: Invoice, status: InvoiceStatus, at: datetime) -> None:
        """The payment never happens: declined, cancelled by the user, or timed out."""
        if status not in UNPAID_FAILURES:
            raise ApiError.bad_request(f"status must be one of {sorted(UNPAID_FAILURES)}")
        self._require(invoice, {InvoiceStatus.CREATED, InvoiceStatus.EXECUTED})
        self._move(invoice, status, at)

    def confirm(self, invoice: Invoice, at: datetime) -> None:
        self._require_paid(invoice)
        self._move(invoice, InvoiceStatus.CONFIRMED, at)

    def reverse(self, invoice: Invoice, at: datetime) -> None:
        self._require_paid(invoice)
        self._move(invoice, InvoiceStatus.REVERSED, at)

    def refund(self, invoice: Invoice, at: datetime) -> None:
        # Messages from the refund-purchase page ([DOC25]).
        if invoice.status is InvoiceStatus.REFUNDED:
            raise ApiError.rejected("Invoice has already been refunded")
        if invoice.status is not InvoiceStatus.CONFIRMED:
            raise ApiError.rejected("Invoice status must be CONFIRMED")
        invoice.refunded_at = at
        self._move(invoice, InvoiceStatus.REFUNDED, at)

    def due(self) -> Iterator[tuple[datetime, Callable[[datetime], None]]]:
        """The next scheduled transition: the automatic reversal of the two-stage payment left
        unconfirmed longest (`Sandbox.process_due` asks again after applying it)."""
        while self._reversals:
            due, invoice_id = self._reversals[0]
            invoice = self.by_id.get(invoice_id)
            if invoice is not None and invoice.reversal_due == due:
                yield due, partial(self._move, invoice, InvoiceStatus.REVERSED)
                return
            heapq.heappop(self._reversals)  # confirmed, cancelled or cleared since

    @staticmethod
    def _require_paid(invoice: Invoice) -> None:
        if invoice.status is not InvoiceStatus.PAID:
            raise ApiError.rejected("Purchase status must be PAID")

    @staticmethod
    def _require(invoice: Invoice, allowed: set[InvoiceStatus]) -> None:
        if invoice.status not in allowed:
            names = ", ".join(sorted(allowed))
            raise ApiError.rejected(f"Invoice status must be {names}, not {invoice.status}")


def _payment_info(invoice: Invoice) -> Json | None:
    """Payment details exist once a payment method was chosen (status EXECUTED or later)."""
    if invoice.executed_at is None:
        return None
    return {
        "paymentDate": msk_time(invoice.paid_at or invoice.executed_at),
        "maskedPan": "XX1111",
        "paymentSystem": "Visa",
        "paymentWay": "Оплата картой",
        "paymentWayCode": "CARD",
        "bankName": "Sberbank",
    }


def invoice_payment(invoice: Invoice) -> Json:
    """v2 purchase / invoice list item (InvoicePayment, §4.1).

    CONFLICT: the OpenAPI names the app field `applicationCode` and writes lowercase statuses; the
    2025 pages say `appId` and UPPERCASE. We emit the newest form.
    """
    return {
        "invoiceId": invoice.invoice_id,
        "invoiceDate": msk_time(invoice.created_at),
        "refundDate": msk_time(invoice.refunded_at) if invoice.refunded_at else None,
        "invoiceStatus": invoice.status.value,
        "developerPayload": invoice.developer_payload,
        "appId": invoice.app_id,
        "ownerCode": invoice.owner_code,
        "paymentInfo": _payment_info(invoice),
        "order": {
            "orderId": invoice.order_id,
            "orderNumber": str(invoice.invoice_id),
            "visualName": invoice.product_code,
            "amountCreate": invoice.amount,
            "amountCurrent": invoice.amount,
            "currency": "RUB",
            "itemCode": invoice.product_code,
            "description": invoice.product_code,
            "language": "ru-RU",
        },
    }


def _visual_amount(kopecks: int) -> str:
    rubles, rest = divmod(kopecks, 100)
    whole = f"{rubles:,}".replace(",", " ")
    return f"{whole} ₽" if rest == 0 else f"{whole},{rest:02d} ₽"


def _legacy_payment_info(invoice: Invoice) -> Json | None:
    if invoice.executed_at is None:
        return None
    return {
        "payment_date": legacy_time(invoice.paid_at or invoice.executed_at),
        "payment_id": f"{invoice.invoice_id}-1",
        "payment_params": None,
        "loyalty_info": None,
        "card_id": "193",
        "paysys_code": "RBS-shortname",
        "masked_pan": "XX1111",
        "expiry_date": "203012",
        "payment_system": "Visa",
        "payment_system_image": None,
        "paysys_image": None,
        "payment_way": "Оплата картой",
        "payment_way_code": "CARD",
        "payment_way_logo": None,
        "bank_info": {
            "bank_name": "Sberbank",
            "bank_country_code": "RU",
            "bank_country_name": None,
            "bank_image": None,
        },
        "device_info": None,
        "name": None,
        "cardholder": "CARDHOLDER NAME",
        "image": None,
        "paysys": "RBS",
    }


def invoice_info(invoice: Invoice, app_name: str) -> Json:
    """Legacy snake_case InvoiceInfo (#8, #9, §4.3), lowercase status as the 2024 pages show."""
    return {
        "invoice_id": str(invoice.invoice_id),
        "invoice_date": legacy_time(invoice.created_at),
        "invoice_status": invoice.status.value.lower(),
        "application_code": str(invoice.app_id),
        "application_name": app_name,
        "owner_code": str(invoice.owner_code),
        "owner_name": ORG_NAME,
        "payment_info": _legacy_payment_info(invoice),
        "payment_methods": None,
        "error": {"user_message": "", "error_description": "", "error_code": 0},
        "invoice": {
            "delivery_info": {
                "delivery_type": None,
                "address": {"country": None, "city": None, "address": None},
                "description": None,
            },
            "invoice_params": [],
            "purchaser": {"email": None, "phone": None, "contact": None},
            "order": {
                "order_id": invoice.order_id,
                "order_number": str(invoice.invoice_id),
                "order_date": legacy_time(invoice.created_at),
                "service_id": str(invoice.app_id),
                "expiration_date": legacy_time(invoice.created_at + timedelta(minutes=20)),
                "tax_system": None,
                "trade_name": None,
                "visual_name": invoice.product_code,
                "org_name": ORG_NAME,
                "org_inn": "4419198349",
                "visual_amount": _visual_amount(invoice.amount),
                "order_bundle": [
                    {
                        "position_id": 1,
                        "item_params": [],
                        "item_amount": invoice.amount,
                        "item_code": invoice.product_code,
                        "item_price": invoice.amount,
                        "discount_type": None,
                        "discount_value": None,
                        "interest_type": None,
                        "interest_value": None,
                        "tax_type": 6,
                        "tax_sum": None,
                        "name": invoice.product_code,
                        "quantity": {"value": 1, "measure": "шт"},
                        "currency": "RUB",
                        "image": "",
                    }
                ],
                "amount": invoice.amount,
                "currency": "RUB",
                "purpose": invoice.product_code,
                "description": invoice.product_code,
                "language": "ru-RU",
            },
        },
        "image": "",
    }
