"""Every documented body parses unchanged; the 2025 variants and unknown values do too."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from core.rustore.models import (
    AuthToken,
    BankInfo,
    DeliveryInfo,
    Envelope,
    InvoiceError,
    InvoiceInfo,
    InvoicePage,
    InvoicePayment,
    KeyValue,
    LegacyInvoice,
    LegacyOrder,
    LegacyPaymentInfo,
    OrderBundleItem,
    Purchaser,
    Quantity,
    SmartPayResult,
    SubscriptionPurchase,
)
from core.rustore.statuses import InvoiceStatus, SubscriptionPeriod, SubscriptionState
from core.rustore.webhook import (
    InvoiceStatusNotification,
    TestEventNotification,
    parse_notification,
)
from tests.fixtures.sandbox import RUSTORE_EXAMPLES, SHARED_RUSTORE_EXAMPLES

EXAMPLES = RUSTORE_EXAMPLES


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def test_the_examples_are_rustores_own() -> None:
    """The repository's copy of the documented bodies is byte for byte the team's."""
    if not SHARED_RUSTORE_EXAMPLES.is_dir():
        pytest.skip(f"no {SHARED_RUSTORE_EXAMPLES} to compare with (a clone on its own)")
    shared = {p.name: p.read_bytes() for p in SHARED_RUSTORE_EXAMPLES.iterdir() if p.is_file()}
    ours = {p.name: p.read_bytes() for p in EXAMPLES.iterdir() if p.is_file()}
    assert ours == shared


def decode(raw: bytes | str, model: Any) -> Any:
    return msgspec.json.decode(raw, type=model, strict=False)


def test_auth_ok() -> None:
    envelope = decode(example("auth_ok.json"), Envelope[AuthToken])

    assert envelope.ok
    assert envelope.body == AuthToken(jwe="eyJlbmMiOiJBM......nuuM227D_O1A", ttl=900)


def test_error_jwe_expired_is_an_error_envelope() -> None:
    envelope = decode(example("error_jwe_expired.json"), Envelope[InvoicePayment])

    assert not envelope.ok
    assert envelope.code == "ERROR"
    assert envelope.message == "Jwe token is expired"
    assert envelope.body is None


def test_legacy_invoice_every_nested_object_is_typed() -> None:
    envelope = decode(example("legacy_invoice_ok.json"), Envelope[InvoiceInfo])
    info = envelope.body

    assert isinstance(info, InvoiceInfo)
    assert info.invoice_id == "2850"
    assert info.status is InvoiceStatus.CONFIRMED
    assert info.invoice_status == "confirmed"
    assert info.application_code == "3399750"
    assert info.invoice_date == "2023-07-18T14:31:33+03"
    assert info.error == InvoiceError(
        user_message="Счет подтвержден", error_description="", error_code=0
    )
    payment = info.payment_info
    assert isinstance(payment, LegacyPaymentInfo)
    assert payment.payment_way_code == "CARD_BINDING"
    assert payment.expiry_date == "202412"
    assert payment.bank_info == BankInfo(bank_name="Sberbank", bank_country_code="SU")
    assert payment.loyalty_info is None
    assert payment.device_info is None
    invoice = info.invoice
    assert isinstance(invoice, LegacyInvoice)
    assert invoice.purchaser == Purchaser()
    assert isinstance(invoice.delivery_info, DeliveryInfo)
    assert invoice.delivery_info.address is not None
    assert KeyValue(key="payment_type", value="INITIAL") in invoice.invoice_params
    order = invoice.order
    assert isinstance(order, LegacyOrder)
    assert order.amount == 100  # kopecks
    assert order.visual_amount == "1 ₽"
    item = order.order_bundle[0]
    assert isinstance(item, OrderBundleItem)
    assert (item.item_code, item.item_price, item.item_amount, item.tax_type) == (
        "1day",
        100,
        100,
        6,
    )
    assert item.quantity == Quantity(value=1, measure="шт")
    assert item.item_params[2] == KeyValue(
        key="_auto_itemAttributes_supplier_info.inn", value="4419198349"
    )


def test_v3_subscription_is_a_bare_object_with_micros_as_ints() -> None:
    subscription = decode(example("v3_subscription_ok.json"), SubscriptionPurchase)

    assert subscription.price_amount_micros == 749_000_000
    assert subscription.start_time_millis == 1_694_431_707_000
    assert subscription.expiry_time.isoformat() == "2023-10-11T14:28:27+00:00"
    assert subscription.acknowledged
    assert not subscription.is_test
    assert subscription.order_id == "33252..1"
    intro = subscription.introductory_price_info
    assert intro is not None
    assert (intro.introductory_price_amount_micros, intro.introductory_price_cycles) == (
        599_000_000,
        1,
    )
    assert intro.introductory_price_period == "P1M"


def test_v2_purchase_schema_example_with_application_code_and_lowercase_status() -> None:
    envelope = decode(example("v2_purchase_schema_example.json"), Envelope[InvoicePayment])
    payment = envelope.body

    assert payment.invoice_status == "created"
    assert payment.status is InvoiceStatus.CREATED
    assert payment.application_code == 0
    assert payment.app_id == 0  # filled from applicationCode
    assert payment.payment_info is not None
    assert payment.payment_info.bank_name == "string"
    assert payment.order is not None
    assert payment.order.amount_current == 0


def test_2025_purchase_with_app_id_uppercase_status_and_extra_fields() -> None:
    body = {
        "code": "OK",
        "message": None,
        "body": {
            "invoiceId": "5551234",  # the doc table sometimes types it as a string
            "invoiceDate": "2025-04-01T12:00:00+03:00",
            "invoiceStatus": "CONFIRMED",
            "appId": 2063541234,
            "ownerCode": 98765,
            "developerPayload": "user-42",
            "paymentInfo": {"paymentDate": "2025-04-01T12:00:05+03:00", "paymentWay": "SberPay"},
            "order": {
                "orderId": "o-1",
                "amountCreate": 19900,
                "amountCurrent": 14900,
                "itemCode": "coins_100",
            },
            "someFieldAddedIn2026": {"nested": [1, 2]},
        },
        "timestamp": "2025-04-01T12:00:06.123Z",
    }

    payment = decode(json.dumps(body), Envelope[InvoicePayment]).body

    assert payment.invoice_id == 5551234
    assert payment.app_id == 2063541234
    assert payment.application_code is None
    assert payment.status is InvoiceStatus.CONFIRMED
    assert payment.order.amount_current == 14900
    assert payment.order.item_code == "coins_100"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("paid", InvoiceStatus.PAID),
        ("PAID", InvoiceStatus.PAID),
        (" Reversed ", InvoiceStatus.REVERSED),
        ("consumed", InvoiceStatus.CONSUMED),
        ("ON_HOLD_SINCE_2027", InvoiceStatus.UNKNOWN),
        ("", InvoiceStatus.UNKNOWN),
    ],
)
def test_unknown_status_does_not_crash_and_keeps_the_raw_value(
    raw: str, expected: InvoiceStatus
) -> None:
    payment = decode(json.dumps({"invoiceId": 1, "invoiceStatus": raw}), InvoicePayment)

    assert payment.status is expected
    assert payment.invoice_status == raw


def test_invoice_page() -> None:
    body = {
        "content": [{"invoiceId": 1, "invoiceStatus": "confirmed", "applicationCode": 7}],
        "pageNumber": 0,
        "pageSize": 20,
        "totalElements": 1,
        "totalPages": 1,
    }

    page = decode(json.dumps(body), InvoicePage)

    assert page.content[0].app_id == 7
    assert page.total_pages == 1


def test_smartpay_subscription_doc_example_shape() -> None:
    # The doc's example: inner code 40401 with success false, yet a full body.
    body = {
        "code": 40401,
        "success": False,
        "message": "",
        "body": {
            "serviceName": "Service",
            "subscriptionId": 123,
            "addParameters": None,
            "productType": "SUBSCRIPTION",
            "productCode": "sub_month",
            "recurrent": True,
            "countOfDay": 30,
            "periodType": "MONTH",
            "periodDuration": 1,
            "nextPaymentDate": "2024-02-01",
            "price": 29900,
            "currency": "RUB",
            "state": "activated",
            "currentPeriod": "GRACE",
            "debtPaymentPeriod": None,
            "tariffId": 5,
            "periods": [
                {
                    "periodName": "STANDARD",
                    "periodType": "MONTH",
                    "periodDuration": 1,
                    "periodPrice": 29900,
                    "nextPeriod": None,
                }
            ],
        },
    }

    result = decode(json.dumps(body), SmartPayResult)

    assert result.body is not None
    assert result.body.subscription_state is SubscriptionState.ACTIVATED
    assert result.body.period is SubscriptionPeriod.GRACE
    assert result.body.periods[0].period_price == 29900


def test_notification_invoice_status_example() -> None:
    notification = parse_notification(example("notification_invoice_status.json"))

    assert isinstance(notification, InvoiceStatusNotification)
    assert notification.app_id == 12345
    assert not notification.sandbox
    assert notification.data.invoice_id == "123"
    assert notification.data.purchase_token == "111.123"
    assert notification.data.new_status is InvoiceStatus.PAID
    assert notification.data.old_status is InvoiceStatus.EXECUTED


def test_notification_test_event_example() -> None:
    notification = parse_notification(example("notification_test_event.json"))

    assert isinstance(notification, TestEventNotification)
    assert notification.data.test == "TEST"
