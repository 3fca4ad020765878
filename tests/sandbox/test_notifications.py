"""Server notifications (§7): encrypted, `data` as a JSON string, two cards, retries, options."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.exceptions import InvalidTag

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import Receiver, decrypt, example, opened, wait_for


def test_invoice_status_notifications_follow_the_documented_shape(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, developer_payload="user-1")
    sandbox.control.pay(purchase["invoiceId"])

    received = receiver.wait(2)

    path, body = received[0]
    assert path == "/webhook"
    assert body.keys() == {"id", "timestamp", "payload"}
    payloads = opened(sandbox, received)
    documented = example("notification_invoice_status.json")
    assert all(p.keys() == documented.keys() for p in payloads)
    assert all(isinstance(p["data"], str) for p in payloads)
    assert payloads[0]["app_id"] == sandbox.app_id
    assert payloads[0]["notification_type"] == "INVOICE_STATUS"
    data = [json.loads(p["data"]) for p in payloads]
    assert set(json.loads(documented["data"])) <= set(data[0])
    assert [(d["status_old"], d["status_new"]) for d in data] == [
        ("CREATED", "EXECUTED"),
        ("EXECUTED", "CONFIRMED"),
    ]
    assert data[1]["invoice_id"] == str(purchase["invoiceId"])
    assert data[1]["purchase_id"] == purchase["purchaseId"]
    assert data[1]["order_id"] == purchase["orderId"]
    assert data[1]["purchase_token"] == purchase["purchaseToken"]
    assert data[1]["product_code"] == "coins"
    assert data[1]["developer_payload"] == "user-1"
    assert data[0]["change_status_time"] == body["timestamp"]


def test_test_payments_go_to_the_sandbox_card_with_its_own_key(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000, test=True, two_stage=True)
    sandbox.control.pay(purchase["invoiceId"])
    sandbox.control.confirm(purchase["invoiceId"])

    received = receiver.wait(3)

    assert {path for path, _ in received} == {"/webhook?sandbox"}
    payloads = opened(sandbox, received)
    assert {p["notification_type"] for p in payloads} == {"INVOICE_STATUS_SANDBOX"}
    assert [json.loads(p["data"])["status_new"] for p in payloads] == [
        "EXECUTED",
        "PAID",
        "CONFIRMED",
    ]
    with pytest.raises(InvalidTag):
        decrypt(sandbox.webhook_key, received[0][1]["payload"])


def test_a_failed_delivery_is_retried_with_the_same_id(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    purchase = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.fail(purchase["invoiceId"], "CANCELLED")

    received = receiver.wait(2)

    assert received[0][1]["id"] == received[1][1]["id"]
    assert opened(sandbox, received)[0] == opened(sandbox, received)[1]
    # The sandbox logs a delivery once it has read the answer, a moment after we received it.
    wait_for(lambda: len(sandbox.control.notifications()["deliveries"]) == 2)
    deliveries = sandbox.control.notifications()["deliveries"]
    assert [(d["attempt"], d["statusCode"]) for d in deliveries] == [(1, 500), (2, 200)]


def test_retries_stop_after_the_schedule(sandbox: SandboxHandle, receiver: Receiver) -> None:
    sandbox.control.configure_notifications(retry_seconds=[0.05, 0.05])
    receiver.statuses = [503] * 10
    purchase = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.fail(purchase["invoiceId"])

    receiver.wait(3)
    wait_for(lambda: sandbox.control.notifications()["pending"] == 0)
    time.sleep(0.2)

    assert len(receiver.requests) == 3


def test_test_event_and_its_sandbox_twin(sandbox: SandboxHandle, receiver: Receiver) -> None:
    sandbox.control.send_test_notification()
    sandbox.control.send_test_notification(test=True)

    payloads = opened(sandbox, receiver.wait(2))

    assert payloads[0] == example("notification_test_event.json") | {"app_id": sandbox.app_id}
    assert payloads[1]["notification_type"] == "TEST_EVENT_SANDBOX"


def test_subscription_events(sandbox: SandboxHandle, receiver: Receiver) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, developer_payload="user-9")
    sandbox.control.fail_renewal(sub["purchaseId"])
    sandbox.control.recover(sub["purchaseId"])
    sandbox.control.cancel_subscription(sub["purchaseId"])

    payloads = opened(sandbox, receiver.wait(4))

    assert {p["notification_type"] for p in payloads} == {"SUBSCRIPTION_EVENT"}
    data = [json.loads(p["data"]) for p in payloads]
    assert [d["subscription_event_type"] for d in data] == [
        "ACTIVATED",
        "PAYMENT_FAILED",
        "RENEWED",
        "CANCELLED",
    ]
    assert (data[1]["period_old"], data[1]["period_new"]) == ("MAIN", "GRACE")
    assert data[3]["autorenewing"] is False
    assert data[2]["order_id"] == f"{sub['invoiceId']}..0"
    assert {d["purchase_id"] for d in data} == {sub["purchaseId"]}
    assert data[0]["developer_payload"] == "user-9"
    assert set(data[0]) == {
        "product_code",
        "event_time",
        "subscription_event_type",
        "status_new",
        "status_old",
        "period_new",
        "period_old",
        "autorenewing",
        "invoice_id",
        "order_id",
        "purchase_id",
        "developer_payload",
    }


def test_switched_off_nothing_is_sent_or_queued(sandbox: SandboxHandle, receiver: Receiver) -> None:
    sandbox.control.configure_notifications(enabled=False)
    purchase = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.pay(purchase["invoiceId"])
    sandbox.control.configure_notifications(enabled=True)
    sandbox.control.send_test_notification()

    payloads = opened(sandbox, receiver.wait(1))
    time.sleep(0.2)

    assert [p["notification_type"] for p in payloads] == ["TEST_EVENT"]
    assert len(receiver.requests) == 1


def test_deliver_twice_and_lowercase_statuses(sandbox: SandboxHandle, receiver: Receiver) -> None:
    sandbox.control.configure_notifications(deliver_twice=True, status_case="lower")
    purchase = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.fail(purchase["invoiceId"], "EXPIRED")

    received = receiver.wait(2)

    assert received[0][1]["id"] == received[1][1]["id"]
    data = json.loads(opened(sandbox, received)[0]["data"])
    assert (data["status_old"], data["status_new"]) == ("created", "expired")


def test_shuffle_delivers_everything_in_some_order(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    sandbox.control.configure_notifications(shuffle=True)
    invoice_ids = [sandbox.control.create_purchase("coins", 100)["invoiceId"] for _ in range(8)]
    for invoice_id in invoice_ids:
        sandbox.control.fail(invoice_id)

    payloads = opened(sandbox, receiver.wait(8))

    seen = [int(json.loads(p["data"])["invoice_id"]) for p in payloads]
    assert sorted(seen) == invoice_ids
    assert seen != invoice_ids  # 8! orders; the same one twice is a 1-in-40320 event


def test_control_calls_do_not_wait_for_the_receiver(
    sandbox: SandboxHandle, receiver: Receiver
) -> None:
    sandbox.control.configure_notifications(url="http://10.255.255.1:9/unroutable")
    started = time.monotonic()
    purchase = sandbox.control.create_purchase("coins", 1000)
    sandbox.control.pay(purchase["invoiceId"])

    assert time.monotonic() - started < 1
    assert sandbox.control.notifications()["pending"] >= 1
