"""Typed RuStore response bodies (rustore-api.md §4), decoded with msgspec.

Rules that hold for every model here, because RuStore's sources disagree with each other:
* unknown fields are ignored, so a field RuStore adds later does not break decoding;
* bodies are decoded with `strict=False`, so a number sent as a JSON string ("749000000", an
  invoiceId "123") still lands in an `int` field;
* statuses stay as the raw string RuStore sent, next to a property that parses them into a
  case-insensitive enum (`UNKNOWN` for values we do not know);
* only fields without which the object is meaningless are required; everything else is optional.
Money: invoices and one-time purchases are integer kopecks; Google-like subscriptions carry
micros (1 RUB = 1 000 000), which RuStore sends as strings and we hold as ints.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import msgspec

from core.rustore.statuses import InvoiceStatus, SubscriptionPeriod, SubscriptionState

T = TypeVar("T")


class Model(msgspec.Struct, kw_only=True):
    """Base of the snake_case models (legacy API and notifications)."""


class CamelModel(msgspec.Struct, kw_only=True, rename="camel"):
    """Base of the camelCase models (current API)."""


class Envelope(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """The standard answer `{"code", "message", "body", "timestamp"}`, for success and errors."""

    code: str
    message: str | None = None
    body: T | None = None
    timestamp: str | None = None

    @property
    def ok(self) -> bool:
        # Some doc tables print "OK" with a Cyrillic O and K; real answers use Latin. Accept both.
        return self.code.strip().upper() in ("OK", "\u041e\u041a")


class AuthToken(Model):
    """Body of a successful `POST /public/auth`: an opaque JWE and its lifetime in seconds.

    `jwe` is optional here only so that an OK answer without it (seen in 2025 when keys vanished
    from the Console) is reported as an auth failure rather than as a garbled body.
    """

    jwe: str | None = None
    ttl: int = 900
    """Seconds; always 900 in every source."""


# --- Current API: v2 purchase and the invoice list (§4.1, §4.2) ---


class PaymentInfo(CamelModel):
    payment_date: str | None = None
    masked_pan: str | None = None
    payment_system: str | None = None
    payment_way: str | None = None
    payment_way_code: str | None = None
    bank_name: str | None = None


class Order(CamelModel):
    order_id: str | None = None
    order_number: str | None = None
    visual_name: str | None = None
    amount_create: int | None = None
    """Original amount, kopecks."""
    amount_current: int | None = None
    """Amount after discounts, kopecks: what the user paid."""
    currency: str | None = None
    item_code: str | None = None
    """Product code from the Console."""
    description: str | None = None
    language: str | None = None


class InvoicePayment(CamelModel):
    """One payment: `GET /public/v2/purchase/{invoiceId}` and each invoice-list item."""

    invoice_id: int
    invoice_status: str
    """Raw status as sent (UPPERCASE in 2025 docs, lowercase in the OpenAPI); see `status`."""
    invoice_date: str | None = None
    refund_date: str | None = None
    developer_payload: str | None = None
    app_id: int | None = None
    """Our app id. CONFLICT: 2025 docs say `appId`, the OpenAPI `applicationCode`; either one
    fills this field."""
    application_code: int | None = None
    owner_code: int | None = None
    payment_info: PaymentInfo | None = None
    """None while the invoice is CREATED (no payment method chosen yet)."""
    order: Order | None = None
    purchase_id: str | None = None
    """UNCERTAIN: no source confirms the Pay SDK purchaseId is in this body; kept if present."""

    def __post_init__(self) -> None:
        if self.app_id is None and self.application_code is not None:
            self.app_id = self.application_code

    @property
    def status(self) -> InvoiceStatus:
        return InvoiceStatus(self.invoice_status)


class InvoicePage(CamelModel):
    """One page of `GET /public/applications/{appId}/invoices`; pages are numbered from 0."""

    content: list[InvoicePayment] = []
    page_number: int = 0
    page_size: int = 0
    total_elements: int = 0
    total_pages: int = 0


# --- Legacy API: InvoiceInfo by purchase token or v1 invoiceId, snake_case (§4.3) ---


class KeyValue(Model):
    key: str | None = None
    value: str | None = None


class LoyaltyInfo(Model):
    service_code: str | None = None
    service_name: str | None = None
    change_rate: int | None = None
    payment_bonus: int | None = None
    award_bonus: int | None = None
    image: str | None = None


class BankInfo(Model):
    bank_name: str | None = None
    bank_country_code: str | None = None
    bank_country_name: str | None = None
    bank_image: str | None = None


class DeviceInfo(Model):
    device_platform_type: str | None = None
    device_platform_version: str | None = None
    device_model: str | None = None
    device_manufacturer: str | None = None
    device_id: str | None = None
    surface: str | None = None
    surface_version: str | None = None


class LegacyPaymentInfo(Model):
    payment_date: str | None = None
    payment_id: str | None = None
    payment_params: KeyValue | list[KeyValue] | None = None
    """Documented as `{key, value}` or null; a list is accepted too."""
    loyalty_info: LoyaltyInfo | None = None
    card_id: str | None = None
    paysys_code: str | None = None
    masked_pan: str | None = None
    expiry_date: str | None = None
    """Card expiry, YYYYMM."""
    payment_system: str | None = None
    payment_system_image: str | None = None
    paysys_image: str | None = None
    payment_way: str | None = None
    payment_way_code: str | None = None
    payment_way_logo: str | None = None
    bank_info: BankInfo | None = None
    device_info: DeviceInfo | None = None
    name: str | None = None
    cardholder: str | None = None
    image: str | None = None
    paysys: str | None = None


class PaymentMethod(Model):
    method: str | None = None
    action: str | None = None


class PaymentMethods(Model):
    user_message: str | None = None
    methods: list[PaymentMethod] = []


class InvoiceError(Model):
    """The legacy `error` block; `error_code` 0 means no error."""

    user_message: str | None = None
    error_description: str | None = None
    error_code: int | None = None


class Purchaser(Model):
    email: str | None = None
    phone: str | None = None
    contact: str | None = None


class Address(Model):
    country: str | None = None
    city: str | None = None
    address: str | None = None


class DeliveryInfo(Model):
    delivery_type: str | None = None
    description: str | None = None
    address: Address | None = None


class Quantity(Model):
    value: int | float | None = None
    measure: str | None = None


class OrderBundleItem(Model):
    position_id: int | None = None
    name: str | None = None
    item_params: list[KeyValue] = []
    quantity: Quantity | None = None
    item_amount: int | None = None
    """Kopecks."""
    item_code: str | None = None
    """Product code from the Console."""
    item_price: int | None = None
    """Kopecks."""
    currency: str | None = None
    discount_type: str | None = None
    discount_value: float | None = None
    interest_type: str | None = None
    interest_value: float | None = None
    tax_type: int | None = None
    tax_sum: int | None = None
    image: str | None = None


class LegacyOrder(Model):
    order_id: str | None = None
    order_number: str | None = None
    order_date: str | None = None
    service_id: str | None = None
    expiration_date: str | None = None
    tax_system: int | None = None
    trade_name: str | None = None
    visual_name: str | None = None
    org_name: str | None = None
    org_inn: str | None = None
    visual_amount: str | None = None
    """Display string such as "1 ₽"; use `amount` for arithmetic."""
    amount: int | None = None
    """Kopecks."""
    currency: str | None = None
    purpose: str | None = None
    description: str | None = None
    language: str | None = None
    order_bundle: list[OrderBundleItem] = []


class LegacyInvoice(Model):
    purchaser: Purchaser | None = None
    delivery_info: DeliveryInfo | None = None
    invoice_params: list[KeyValue] = []
    order: LegacyOrder | None = None


class InvoiceInfo(Model):
    """Legacy payment data: `GET /public/purchase/{token}` and `/public/purchase?invoiceId=`."""

    invoice_id: str
    invoice_status: str
    """Raw, lowercase in the legacy API; see `status`."""
    invoice_date: str | None = None
    """E.g. `2023-07-18T14:31:33+03` (offset without minutes; `datetime.fromisoformat` reads it)."""
    application_code: str | None = None
    application_name: str | None = None
    owner_code: str | None = None
    owner_name: str | None = None
    image: str | None = None
    error: InvoiceError | None = None
    payment_info: LegacyPaymentInfo | None = None
    payment_methods: PaymentMethods | None = None
    invoice: LegacyInvoice | None = None

    @property
    def status(self) -> InvoiceStatus:
        return InvoiceStatus(self.invoice_status)


# --- Google-like subscription: v2 (glike), v3 (bare), v4 (enveloped) (§4.4) ---


class IntroductoryPriceInfo(CamelModel):
    introductory_price_currency_code: str | None = None
    introductory_price_amount_micros: int | None = None
    introductory_price_period: str | None = None
    """ISO-8601 period such as P1M."""
    introductory_price_cycles: int | None = None


def _from_millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class SubscriptionPurchase(CamelModel):
    """A Google-Play-like subscription purchase, the same shape in v2, v3 and v4."""

    start_time_millis: int
    expiry_time_millis: int
    auto_renewing: bool | None = None
    price_currency_code: str | None = None
    price_amount_micros: int | None = None
    """Price in micros: 749000000 = 749 RUB."""
    country_code: str | None = None
    payment_state: int | None = None
    """0 pending, 1 received, 2 free trial; absent for cancelled or expired subscriptions."""
    cancel_reason: int | None = None
    """0 by the user, 1 by the system (e.g. a payment problem); only when closed."""
    order_id: str | None = None
    """Latest invoice; renewals look like `33252..1`."""
    acknowledgement_state: int | None = None
    introductory_price_info: IntroductoryPriceInfo | None = None
    kind: str | None = None
    purchase_type: int | None = None
    """v3: 0 real, 1 test; v2: always 0."""
    developer_payload: str | None = None
    """v4 only."""
    external_account_id: str | None = None
    """v4, UNCERTAIN: seen only in one client's struct."""

    @property
    def start_time(self) -> datetime:
        return _from_millis(self.start_time_millis)

    @property
    def expiry_time(self) -> datetime:
        return _from_millis(self.expiry_time_millis)

    @property
    def acknowledged(self) -> bool:
        return self.acknowledgement_state == 1

    @property
    def is_test(self) -> bool:
        return self.purchase_type == 1


# --- Legacy SmartPay subscription (§4.5) and state (#11) ---


class SmartPayPeriod(CamelModel):
    period_name: str | None = None
    period_type: str | None = None
    period_duration: int | None = None
    period_price: int | None = None
    """Kopecks."""
    next_period: str | None = None


class SmartPaySubscription(CamelModel):
    """Legacy subscription data from `GET /public/subscription/{token}`."""

    subscription_id: int | None = None
    service_name: str | None = None
    add_parameters: Any = None
    product_type: str | None = None
    product_name: str | None = None
    product_code: str | None = None
    recurrent: bool | None = None
    """Auto-renew is on."""
    count_of_day: int | None = None
    period_type: str | None = None
    period_duration: int | None = None
    next_payment_date: str | None = None
    """YYYY-MM-DD."""
    price: int | None = None
    """Kopecks."""
    currency: str | None = None
    image_url: str | None = None
    state: str | None = None
    current_period: str | None = None
    debt_payment_period: Any = None
    description: str | None = None
    tariff_id: int | None = None
    periods: list[SmartPayPeriod] = []

    @property
    def subscription_state(self) -> SubscriptionState:
        return SubscriptionState(self.state or "")

    @property
    def period(self) -> SubscriptionPeriod:
        return SubscriptionPeriod(self.current_period or "")


class SmartPayResult(CamelModel):
    """The inner envelope of the legacy subscription answer: `{code, success, message, body}`.

    The doc's own example is inconsistent (inner `code` 40401, `success` false, yet a full body),
    so the client trusts `body` when present and uses `message` only when `body` is missing.
    """

    code: int | str | None = None
    success: bool | None = None
    message: str | None = None
    body: SmartPaySubscription | None = None


class SubscriptionStateBody(Model):
    is_active: bool
