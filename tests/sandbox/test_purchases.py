"""One-time purchases through the public API (§3a #1-#5, legacy #8/#9) and the control API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.purchases import Invoice, InvoiceBook, InvoiceStatus
from tests.fixtures.sandbox import SandboxControlError, SandboxHandle
from tests.sandbox.conftest import MSK, example, sandbox_now

SIX_HOURS = 6 * 3600


def _v2(api: httpx.Client, headers: dict[str, str], invoice_id: int, test: bool = False) -> Any:
    prefix = "/public/sandbox" if test else "/public"
    return api.get(f"{prefix}/v2/purchase/{invoice_id}", headers=headers).json()


def _action(
    api: httpx.Client,
    headers: dict[str, str],
    sandbox: SandboxHandle,
    purchase_id: str,
    action: str,
) -> httpx.Response:
    path = f"/public/applications/{sandbox.app_id}/purchases/{purchase_id}:{action}"
    return api.put(path, headers=headers)


def _keys(value: Any) -> Any:
    """The nested key structure of a JSON value, for comparing shapes with the examples."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return None


def test_v2_purchase_has_the_documented_shape(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins_100", 14900, developer_payload="user-7")
    sandbox.control.pay(purchase["invoiceId"])

    answer = _v2(api, headers, purchase["invoiceId"])

    documented = example("v2_purchase_schema_example.json")
    documented["body"]["appId"] = documented["body"].pop("applicationCode")
    assert _keys(answer) == _keys(documented)
    body = answer["body"]
    assert body["invoiceId"] == purchase["invoiceId"]
    assert body["invoiceStatus"] == "CONFIRMED"
    assert body["appId"] == sandbox.app_id
    assert body["developerPayload"] == "user-7"
    assert body["refundDate"] is None
    assert body["invoiceDate"].endswith("+03:00")
    assert body["order"]["itemCode"] == "coins_100"
    assert body["order"]["amountCreate"] == body["order"]["amountCurrent"] == 14900
    assert body["order"]["orderId"] == purchase["orderId"]


def test_created_invoice_has_no_payment_info(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 100, order_id="my-order-1")

    body = _v2(api, headers, purchase["invoiceId"])["body"]

    assert body["invoiceStatus"] == "CREATED"
    assert body["paymentInfo"] is None
    assert body["order"]["orderId"] == "my-order-1"


def test_two_stage_confirm_then_repeated_confirm(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, two_stage=True)
    sandbox.control.pay(purchase["invoiceId"])
    assert _v2(api, headers, purchase["invoiceId"])["body"]["invoiceStatus"] == "PAID"

    first = _action(api, headers, sandbox, purchase["purchaseId"], "confirm")
    again = _action(api, headers, sandbox, purchase["purchaseId"], "confirm")

    assert first.status_code == 200
    assert first.json()["code"] == "OK"
    assert first.json()["body"] == {}
    assert _v2(api, headers, purchase["invoiceId"])["body"]["invoiceStatus"] == "CONFIRMED"
    assert again.status_code == 400
    assert again.json()["code"] == "ERROR"
    assert again.json()["body"] is None
    assert again.json()["message"] == "Purchase status must be PAID"


def test_cancel_releases_the_hold(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, two_stage=True)
    sandbox.control.pay(purchase["invoiceId"])

    assert _action(api, headers, sandbox, purchase["purchaseId"], "cancel").json()["code"] == "OK"

    assert _v2(api, headers, purchase["invoiceId"])["body"]["invoiceStatus"] == "REVERSED"
    confirm = _action(api, headers, sandbox, purchase["purchaseId"], "confirm")
    assert confirm.json()["message"] == "Purchase status must be PAID"


def test_unconfirmed_payment_is_reversed_after_six_hours(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, two_stage=True)
    sandbox.control.pay(purchase["invoiceId"])

    sandbox.control.advance_clock(SIX_HOURS - 60)
    assert sandbox.control.get_purchase(purchase["invoiceId"])["status"] == "PAID"
    sandbox.control.advance_clock(61)

    assert sandbox.control.get_purchase(purchase["invoiceId"])["status"] == "REVERSED"


def test_one_stage_purchase_cannot_be_confirmed(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.pay(purchase["invoiceId"])

    response = _action(api, headers, sandbox, purchase["purchaseId"], "confirm")

    assert response.json()["message"] == "Purchase status must be PAID"
    assert sandbox.control.get_purchase(purchase["invoiceId"])["status"] == "CONFIRMED"


@pytest.mark.parametrize("status", ["REJECTED", "EXPIRED", "CANCELLED"])
def test_failed_payments(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], status: str
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000)

    sandbox.control.fail(purchase["invoiceId"], status)

    assert _v2(api, headers, purchase["invoiceId"])["body"]["invoiceStatus"] == status
    with pytest.raises(SandboxControlError):
        sandbox.control.pay(purchase["invoiceId"])


def test_refund_and_its_errors(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, two_stage=True)
    sandbox.control.pay(purchase["invoiceId"])
    path = f"/public/applications/{sandbox.app_id}/invoices/{purchase['invoiceId']}"

    not_yet = api.patch(path, headers=headers)
    sandbox.control.confirm(purchase["invoiceId"])
    done = api.patch(path, headers=headers)
    again = api.patch(path, headers=headers)

    assert not_yet.json()["message"] == "Invoice status must be CONFIRMED"
    assert done.status_code == 200
    assert done.json()["body"] == {}
    assert again.json()["message"] == "Invoice has already been refunded"
    body = _v2(api, headers, purchase["invoiceId"])["body"]
    assert body["invoiceStatus"] == "REFUNDED"
    assert body["refundDate"] is not None


def test_unknown_and_foreign_purchases(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    foreign = sandbox.control.create_purchase("coins", 1000, app_id=sandbox.app_id + 1)
    sandbox.control.pay(foreign["invoiceId"])

    missing = api.get("/public/v2/purchase/999999999", headers=headers)
    not_mine = api.get(f"/public/v2/purchase/{foreign['invoiceId']}", headers=headers)
    other_app_path = api.patch(
        f"/public/applications/{sandbox.app_id + 1}/invoices/{foreign['invoiceId']}",
        headers=headers,
    )
    unknown_purchase = _action(
        api, headers, sandbox, "0d4e4f5c-0000-0000-0000-000000000000", "confirm"
    )

    assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND")
    assert missing.json()["message"] == "Purchase not found"
    assert (not_mine.status_code, not_mine.json()["message"]) == (403, "Forbidden")
    assert other_app_path.status_code == 403
    assert unknown_purchase.status_code == 404


def test_test_payments_are_visible_only_through_sandbox_paths(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    real = sandbox.control.create_purchase("coins", 1000)
    test = sandbox.control.create_purchase("coins", 1000, test=True, two_stage=True)
    sandbox.control.pay(test["invoiceId"])

    assert _v2(api, headers, real["invoiceId"])["code"] == "OK"
    assert _v2(api, headers, real["invoiceId"], test=True)["code"] == "NOT_FOUND"
    assert _v2(api, headers, test["invoiceId"])["code"] == "NOT_FOUND"
    assert _v2(api, headers, test["invoiceId"], test=True)["body"]["invoiceStatus"] == "PAID"
    sandbox_confirm = api.put(
        f"/public/sandbox/applications/{sandbox.app_id}/purchases/{test['purchaseId']}:confirm",
        headers=headers,
    )
    assert sandbox_confirm.json()["code"] == "OK"
    assert _action(api, headers, sandbox, test["purchaseId"], "confirm").status_code == 404


@pytest.mark.parametrize("separator", [":", "%3A", "%3a"])
def test_colon_paths_route_with_plain_or_encoded_colon(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], separator: str
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, two_stage=True)
    sandbox.control.pay(purchase["invoiceId"])
    base = f"{sandbox.base_url}/public/applications/{sandbox.app_id}/purchases/"

    url = httpx.URL(base + purchase["purchaseId"] + separator + "confirm")
    response = api.put(url, headers=headers)

    assert response.json()["code"] == "OK"
    assert sandbox.control.get_purchase(purchase["invoiceId"])["status"] == "CONFIRMED"


@pytest.mark.parametrize("suffix", [":consume", "", ":"])
def test_unknown_purchase_actions_are_not_found(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], suffix: str
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, two_stage=True)
    path = f"/public/applications/{sandbox.app_id}/purchases/{purchase['purchaseId']}{suffix}"

    assert api.put(path, headers=headers).status_code == 404


def test_invoice_list_filters_by_date_and_status_and_pages(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    confirmed = []
    for _ in range(5):
        purchase = sandbox.control.create_purchase("coins", 1000)
        sandbox.control.pay(purchase["invoiceId"])
        confirmed.append(purchase["invoiceId"])
    refunded = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.pay(refunded["invoiceId"])
    sandbox.control.refund(refunded["invoiceId"])
    sandbox.control.create_purchase("coins", 1000)  # CREATED: filtered out
    sandbox.control.create_purchase("coins", 1000, test=True)  # test: never listed here
    msk_day = sandbox_now(sandbox).astimezone(MSK).date().isoformat()
    path = f"/public/applications/{sandbox.app_id}/invoices"

    def page(*params: tuple[str, str]) -> Any:
        response = api.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()["body"]

    first = page(("invoiceStatuses", "CONFIRMED"), ("invoiceDate", msk_day), ("pageSize", "2"))
    last = page(
        ("invoiceStatuses", "confirmed"),
        ("invoiceDate", msk_day),
        ("pageSize", "2"),
        ("pageNumber", "2"),
    )
    repeated = page(
        ("invoiceStatuses", "CONFIRMED"),
        ("invoiceStatuses", "REFUNDED"),
        ("invoiceDate", msk_day),
    )
    joined = page(("invoiceStatuses", "CONFIRMED,REFUNDED"), ("invoiceDate", msk_day))
    other_day = page(("invoiceStatuses", "CONFIRMED"), ("invoiceDate", "2001-01-01"))

    assert first.keys() == {"content", "pageNumber", "pageSize", "totalElements", "totalPages"}
    assert (first["totalElements"], first["totalPages"], first["pageNumber"]) == (5, 3, 0)
    assert [i["invoiceId"] for i in first["content"]] == confirmed[:2]
    assert [i["invoiceId"] for i in last["content"]] == confirmed[4:]
    assert repeated["totalElements"] == joined["totalElements"] == 6
    assert other_day["totalElements"] == 0
    assert other_day["content"] == []


def test_invoice_list_rejects_bad_parameters(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    path = f"/public/applications/{sandbox.app_id}/invoices"

    no_date = api.get(path, params={"invoiceStatuses": "CONFIRMED"}, headers=headers)
    bad_status = api.get(
        path, params={"invoiceStatuses": "PAYED", "invoiceDate": "2025-01-01"}, headers=headers
    )

    assert (no_date.status_code, no_date.json()["code"]) == (400, "BAD_REQUEST")
    assert (bad_status.status_code, bad_status.json()["body"]) == (400, None)


def test_legacy_purchase_by_token_and_by_invoice_id(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("1day", 100)
    sandbox.control.pay(purchase["invoiceId"])

    by_token = api.get(f"/public/purchase/{purchase['purchaseToken']}", headers=headers).json()
    by_id = api.get(
        "/public/purchase", params={"invoiceId": purchase["invoiceId"]}, headers=headers
    )

    documented = example("legacy_invoice_ok.json")
    documented["body"]["invoice"]["invoice_params"] = []
    documented["body"]["invoice"]["order"]["order_bundle"][0]["item_params"] = []
    assert _keys(by_token) == _keys(documented)
    assert by_id.json()["body"] == by_token["body"]
    body = by_token["body"]
    assert body["invoice_id"] == str(purchase["invoiceId"])
    assert body["invoice_status"] == "confirmed"
    assert body["invoice"]["order"]["amount"] == 100
    assert body["invoice"]["order"]["order_bundle"][0]["item_code"] == "1day"
    assert body["invoice_date"].endswith("+03")


def test_the_clock_looks_only_at_the_next_reversal() -> None:
    """The clock's work before each request is the one reversal due next, not a walk over every
    held payment: a burst of two-stage purchases holds hundreds until the worker confirms them."""
    book = InvoiceBook(lambda _: None)
    start = datetime.now(UTC)
    invoices = [_invoice(invoice_id, two_stage=invoice_id % 2 == 0) for invoice_id in range(1000)]
    for invoice in invoices:
        book.add(invoice)
        # Paid out of order, as under a skewed clock: reversals still come earliest first.
        book.pay(invoice, start + timedelta(seconds=invoice.invoice_id * 7919 % 1000))
    held = sorted(
        (invoice for invoice in invoices if invoice.status is InvoiceStatus.PAID),
        key=lambda invoice: invoice.reversal_due or start,
    )

    ((due, _),) = book.due()
    assert len(held) == 500
    assert due == held[0].reversal_due
    for invoice in held[:-1]:
        book.confirm(invoice, start)
    ((due, reverse),) = book.due()
    reverse(due)

    assert held[-1].status is InvoiceStatus.REVERSED
    assert list(book.due()) == []


def _invoice(invoice_id: int, *, two_stage: bool) -> Invoice:
    return Invoice(
        invoice_id=invoice_id,
        purchase_id=f"purchase-{invoice_id}",
        order_id=f"order-{invoice_id}",
        app_id=1,
        owner_code=1,
        product_code="coins",
        amount=1000,
        two_stage=two_stage,
        test=False,
        developer_payload=None,
        user_id=1,
        created_at=datetime.now(UTC),
    )
