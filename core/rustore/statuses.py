"""Status enums RuStore reports, normalised to UPPERCASE and tolerant of values it adds later.

RuStore's own sources disagree on case (the 2025 docs print `PAID`, the OpenAPI enum and the legacy
API print `paid`), so every enum here matches case-insensitively. A value we do not know maps to
`UNKNOWN` instead of raising: a new status must make a worker stop and look, not crash it. Models
keep the raw string next to the parsed member, so the original value is never lost.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class _TolerantEnum(StrEnum):
    """A string enum that looks values up case-insensitively and falls back to `UNKNOWN`."""

    @classmethod
    def _missing_(cls, value: object) -> Self:
        if isinstance(value, str):
            normalised = value.strip().upper()
            for member in cls:
                if member.value == normalised:
                    return member
        return cls("UNKNOWN")


class InvoiceStatus(_TolerantEnum):
    """Server-side invoice/payment status (rustore-api.md §5.1)."""

    CREATED = "CREATED"
    EXECUTED = "EXECUTED"
    PAID = "PAID"
    """Two-stage purchases only: funds are held until we confirm or cancel (or 6 h pass)."""
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    REVERSED = "REVERSED"
    REFUNDED = "REFUNDED"
    CONSUMED = "CONSUMED"
    """Legacy (BillingClient era), still in the OpenAPI enum."""
    UNKNOWN = "UNKNOWN"


class SubscriptionState(_TolerantEnum):
    """Legacy SmartPay subscription `state` (§5.2); GRACE/HOLD as states are UNCERTAIN."""

    ACTIVATED = "ACTIVATED"
    ACCEPTED = "ACCEPTED"
    DEPOSITED = "DEPOSITED"
    CLOSE_PENDING = "CLOSE_PENDING"
    REPEATING = "REPEATING"
    DECLINED = "DECLINED"
    CANCELED = "CANCELED"
    CLOSED = "CLOSED"
    REFUNDED = "REFUNDED"
    GRACE = "GRACE"
    HOLD = "HOLD"
    UNKNOWN = "UNKNOWN"


class SubscriptionPeriod(_TolerantEnum):
    """Legacy SmartPay `currentPeriod`/`periodName` (§5.2)."""

    PROMO = "PROMO"
    START = "START"
    STANDARD = "STANDARD"
    GRACE = "GRACE"
    HOLD = "HOLD"
    UNKNOWN = "UNKNOWN"


class SubscriptionEventType(_TolerantEnum):
    """`subscription_event_type` of a SUBSCRIPTION_EVENT notification (UNVERIFIED, §7.3)."""

    ACTIVATED = "ACTIVATED"
    RENEWED = "RENEWED"
    CANCELLED = "CANCELLED"
    RESUMED = "RESUMED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CLOSED = "CLOSED"
    UNKNOWN = "UNKNOWN"


class NotificationType(StrEnum):
    """Documented notification types. Not tolerant: an unknown type is refused by the parser."""

    INVOICE_STATUS = "INVOICE_STATUS"
    INVOICE_STATUS_SANDBOX = "INVOICE_STATUS_SANDBOX"
    SUBSCRIPTION_EVENT = "SUBSCRIPTION_EVENT"
    SUBSCRIPTION_EVENT_SANDBOX = "SUBSCRIPTION_EVENT_SANDBOX"
    TEST_EVENT = "TEST_EVENT"
    TEST_EVENT_SANDBOX = "TEST_EVENT_SANDBOX"

    @property
    def sandbox(self) -> bool:
        return self.value.endswith("_SANDBOX")

    @property
    def base(self) -> NotificationType:
        """The type without its `_SANDBOX` suffix, which decides the shape of `data`."""
        return NotificationType(self.value.removesuffix("_SANDBOX"))
