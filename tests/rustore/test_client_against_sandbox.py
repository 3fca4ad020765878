"""Every RuStoreClient method against the RuStore sandbox emulator, over real HTTP.

The sandbox (sandbox/, docs/sandbox.md) is written by someone else from the same reference, so
agreement here is evidence both sides read rustore-api.md the same way; the scripted fake in
fake_rustore.py stays the source of truth for the client's failure behaviour.
Run with `-p tests.fixtures.sandbox` (declared below as well, so the full suite picks it up).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from core.rustore import (
    InvoiceStatus,
    InvoiceStatusNotification,
    RuStoreAuthError,
    RuStoreClient,
    RuStoreConfig,
    RuStoreNotFound,
    RuStorePermanentError,
    SubscriptionState,
    TestEventNotification,
    WebhookCipher,
    read_notification,
)

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxHandle

# Importing the plugin module here would stop pytest from rewriting its asserts; declaring it is
# enough, and lets the full suite run this file without `-p tests.fixtures.sandbox`.
pytest_plugins = ["tests.fixtures.sandbox"]

PRODUCT = "coins_100"
SUBSCRIPTION = "monthly"


def config_for(handle: SandboxHandle) -> RuStoreConfig:
    return RuStoreConfig(
        key_id=handle.key_id,
        private_key=handle.private_key,
        app_id=handle.app_id,
        package_name=handle.package_name,
        api_url=handle.base_url,
        read_timeout=3.0,
        confirm_read_timeout=5.0,
        retry_budget=3.0,
        max_attempts=5,
        backoff_initial=0.05,
        backoff_max=0.2,
    )


@pytest.fixture
async def client(sandbox_reset: SandboxHandle) -> AsyncIterator[RuStoreClient]:
    async with RuStoreClient(config_for(sandbox_reset)) as client:
        yield client


def paid_purchase(handle: SandboxHandle, **options: Any) -> dict[str, Any]:
    purchase = handle.control.create_purchase(PRODUCT, 14900, developer_payload="user-1", **options)
    return handle.control.pay(purchase["invoiceId"])


def subscription(handle: SandboxHandle, **options: Any) -> dict[str, Any]:
    return handle.control.create_subscription(
        SUBSCRIPTION, 29900, developer_payload="user-1", **options
    )


# --- Current methods ---


async def test_get_purchase(sandbox_reset: SandboxHandle, client: RuStoreClient) -> None:
    made = paid_purchase(sandbox_reset)

    payment = await client.get_purchase(made["invoiceId"])

    assert payment.invoice_id == made["invoiceId"]
    assert payment.status is InvoiceStatus.CONFIRMED
    assert payment.app_id == sandbox_reset.app_id
    assert payment.developer_payload == "user-1"
    assert payment.order is not None
    assert payment.order.amount_current == 14900
    assert payment.order.item_code == PRODUCT


async def test_unknown_purchase_is_not_found(client: RuStoreClient) -> None:
    with pytest.raises(RuStoreNotFound):
        await client.get_purchase(987654321)


async def test_test_payments_only_through_the_sandbox_paths(
    sandbox_reset: SandboxHandle, client: RuStoreClient
) -> None:
    made = paid_purchase(sandbox_reset, test=True)

    payment = await client.get_purchase(made["invoiceId"], sandbox=True)

    assert payment.status is InvoiceStatus.CONFIRMED
    with pytest.raises(RuStoreNotFound):
        await client.get_purchase(made["invoiceId"])


@pytest.mark.parametrize("sandbox", [False, True])
async def test_confirm_two_stage_purchase_then_repeat(
    sandbox_reset: SandboxHandle, client: RuStoreClient, sandbox: bool
) -> None:
    made = paid_purchase(sandbox_reset, two_stage=True, test=sandbox)
    assert (await client.get_purchase(made["invoiceId"], sandbox=sandbox)).status is (
        InvoiceStatus.PAID
    )

    await client.confirm_purchase(made["purchaseId"], sandbox=sandbox)

    assert (await client.get_purchase(made["invoiceId"], sandbox=sandbox)).status is (
        InvoiceStatus.CONFIRMED
    )
    with pytest.raises(RuStorePermanentError, match="Purchase status must be PAID"):
        await client.confirm_purchase(made["purchaseId"], sandbox=sandbox)


async def test_cancel_two_stage_purchase(
    sandbox_reset: SandboxHandle, client: RuStoreClient
) -> None:
    made = paid_purchase(sandbox_reset, two_stage=True)

    await client.cancel_purchase(made["purchaseId"])

    assert (await client.get_purchase(made["invoiceId"])).status is InvoiceStatus.REVERSED


async def test_refund_then_refund_again(
    sandbox_reset: SandboxHandle, client: RuStoreClient
) -> None:
    made = paid_purchase(sandbox_reset)

    await client.refund_invoice(made["invoiceId"])

    payment = await client.get_purchase(made["invoiceId"])
    assert payment.status is InvoiceStatus.REFUNDED
    assert payment.refund_date is not None
    with pytest.raises(RuStorePermanentError, match="refunded"):
        await client.refund_invoice(made["invoiceId"])


async def test_invoice_list_pages(sandbox_reset: SandboxHandle, client: RuStoreClient) -> None:
    made = [paid_purchase(sandbox_reset) for _ in range(5)]
    sandbox_reset.control.create_purchase(PRODUCT, 100)  # CREATED: filtered out
    first = await client.get_purchase(made[0]["invoiceId"])
    assert first.invoice_date is not None
    day = datetime.fromisoformat(first.invoice_date).date()

    page = await client.list_invoices(day, [InvoiceStatus.CONFIRMED], page_size=2)
    listed = [p.invoice_id async for p in client.iter_invoices(day, ["CONFIRMED"], page_size=2)]

    assert page.total_elements == 5
    assert page.total_pages == 3
    assert len(page.content) == 2
    assert sorted(listed) == sorted(p["invoiceId"] for p in made)


@pytest.mark.parametrize("sandbox", [False, True])
async def test_subscription_v4_and_acknowledge(
    sandbox_reset: SandboxHandle, client: RuStoreClient, sandbox: bool
) -> None:
    made = subscription(sandbox_reset, test=sandbox)

    before = await client.get_subscription(SUBSCRIPTION, made["purchaseId"], sandbox=sandbox)
    await client.acknowledge_subscription(SUBSCRIPTION, made["purchaseId"], sandbox=sandbox)
    after = await client.get_subscription(SUBSCRIPTION, made["purchaseId"], sandbox=sandbox)

    assert before.price_amount_micros == 29900 * 10_000  # kopecks to micros
    assert before.expiry_time > before.start_time
    assert before.developer_payload == "user-1"
    assert not before.acknowledged
    assert after.acknowledged
    assert after.is_test is sandbox


# --- Legacy token methods ---


async def test_legacy_purchase_by_token_and_invoice_id(
    sandbox_reset: SandboxHandle, client: RuStoreClient
) -> None:
    made = paid_purchase(sandbox_reset)

    by_token = await client.get_purchase_by_token(made["purchaseToken"])
    by_invoice = await client.get_purchase_v1(made["invoiceId"])

    for info in (by_token, by_invoice):
        assert info.invoice_id == str(made["invoiceId"])
        assert info.status is InvoiceStatus.CONFIRMED
        assert info.invoice is not None
        assert info.invoice.order is not None
        assert info.invoice.order.amount == 14900


async def test_legacy_subscription_methods(
    sandbox_reset: SandboxHandle, client: RuStoreClient
) -> None:
    token = subscription(sandbox_reset)["subscriptionToken"]

    legacy = await client.get_legacy_subscription(token)
    active = await client.get_subscription_state(token)
    v3 = await client.get_subscription_v3(SUBSCRIPTION, token)
    glike = await client.get_subscription_glike(SUBSCRIPTION, token)
    await client.acknowledge_subscription_glike(SUBSCRIPTION, token)
    acknowledged = await client.get_subscription_v3(SUBSCRIPTION, token)

    assert legacy.subscription_state is SubscriptionState.ACTIVATED
    assert legacy.price == 29900
    assert active is True
    assert v3.price_amount_micros == glike.price_amount_micros == 29900 * 10_000
    assert glike.purchase_type == 0
    assert acknowledged.acknowledged


async def test_legacy_sandbox_twins(sandbox_reset: SandboxHandle, client: RuStoreClient) -> None:
    made = paid_purchase(sandbox_reset, test=True)
    token = subscription(sandbox_reset, test=True)["subscriptionToken"]

    assert (await client.get_purchase_by_token(made["purchaseToken"], sandbox=True)).status is (
        InvoiceStatus.CONFIRMED
    )
    assert (await client.get_purchase_v1(made["invoiceId"], sandbox=True)).invoice_id == str(
        made["invoiceId"]
    )
    assert (await client.get_legacy_subscription(token, sandbox=True)).product_code == SUBSCRIPTION
    assert await client.get_subscription_state(token, sandbox=True)
    assert (await client.get_subscription_v3(SUBSCRIPTION, token, sandbox=True)).is_test
    await client.acknowledge_subscription_glike(SUBSCRIPTION, token, sandbox=True)


# --- Faults and auth ---


@pytest.mark.parametrize(
    "fault",
    [{"error_rate": 1.0, "error_status": 503}, {"malformed_rate": 1.0}, {"reset_rate": 1.0}],
    ids=["503", "malformed", "reset"],
)
async def test_one_transient_fault_is_retried(
    sandbox_reset: SandboxHandle, client: RuStoreClient, fault: dict[str, Any]
) -> None:
    made = paid_purchase(sandbox_reset)
    sandbox_reset.control.set_fault("v2_purchase", times=1, **fault)

    assert (await client.get_purchase(made["invoiceId"])).status is InvoiceStatus.CONFIRMED


async def test_clock_skew_is_reported(sandbox_reset: SandboxHandle, client: RuStoreClient) -> None:
    sandbox_reset.control.advance_clock(120)

    with pytest.raises(RuStoreAuthError, match="clock skew"):
        await client.get_purchase(1)


# --- Notifications the sandbox sends decrypt with our webhook code ---


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


async def wait_for(bodies: list[bytes], count: int) -> None:
    for _ in range(200):
        if len(bodies) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} notifications, got {len(bodies)}")


async def test_sandbox_notifications_decrypt_and_parse(
    sandbox_reset: SandboxHandle, receiver: tuple[str, list[bytes]]
) -> None:
    url, bodies = receiver
    production = WebhookCipher(sandbox_reset.webhook_key)
    test_card = WebhookCipher(sandbox_reset.sandbox_webhook_key)
    sandbox_reset.control.configure_notifications(enabled=True, url=url, test_url=url)

    sandbox_reset.control.send_test_notification()
    await wait_for(bodies, 1)
    sandbox_reset.control.send_test_notification(test=True)
    await wait_for(bodies, 2)
    made = paid_purchase(sandbox_reset)
    await wait_for(bodies, 4)

    _, check = read_notification(bodies[0], production)
    _, test_check = read_notification(bodies[1], test_card)
    events = [read_notification(body, production)[1] for body in bodies[2:]]
    assert isinstance(check, TestEventNotification)
    assert not check.sandbox
    assert isinstance(test_check, TestEventNotification)
    assert test_check.sandbox
    invoice_events = [n for n in events if isinstance(n, InvoiceStatusNotification)]
    assert len(invoice_events) == len(events) == 2
    assert {n.data.invoice_id for n in invoice_events} == {str(made["invoiceId"])}
    assert {n.data.new_status for n in invoice_events} == {
        InvoiceStatus.EXECUTED,
        InvoiceStatus.CONFIRMED,
    }
