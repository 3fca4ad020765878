"""Scenarios 17, 18 and 20: duplicates, notifications ahead of the app, a rotated key.

A real worker processes the notifications and the RuStore sandbox plays RuStore, so the only
thing a notification can do is make Kopilka re-read the invoice and run the purchase pipeline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest

from core.notifications.models import NotificationStatus
from core.purchases.models import PurchaseState
from sandbox.keys import generate_webhook_key
from tests.fixtures.accounts import Account
from tests.fixtures.processes import Process
from tests.fixtures.purchases import POINTS, PRICES, Shop
from tests.fixtures.webhooks import Webhooks

pytestmark = pytest.mark.usefixtures("pipeline_worker")

FAST_RETRIES = [0.1, 0.2, 0.3]


def _events_for(worker: Process, row_id: uuid.UUID) -> list[str]:
    return [
        str(event["event"])
        for event in worker.json_logs()
        if event.get("notification_id") == str(row_id)
    ]


async def test_concurrent_and_late_redeliveries_are_stored_and_processed_once(
    webhooks: Webhooks, shop: Shop, user_account: Account, pipeline_worker: Process
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    notification_id = uuid.uuid4().hex
    deliveries = [
        webhooks.invoice_body(created, "CONFIRMED", notification_id=notification_id)
        for _ in range(20)
    ]

    responses = await asyncio.gather(*(webhooks.post(body) for body in deliveries))

    assert [r.status_code for r in responses] == [200] * 20
    assert sorted(r.json()["status"] for r in responses) == ["accepted"] + ["duplicate"] * 19
    row = await webhooks.wait_done(notification_id)
    assert (row.status, row.attempts) == (NotificationStatus.PROCESSED, 1)
    await webhooks.wait_purchase(created["invoiceId"], PurchaseState.CREDITED)

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=30)
    late = await webhooks.post(
        webhooks.invoice_body(created, "CONFIRMED", notification_id=notification_id, sent_at=later)
    )
    await asyncio.sleep(1)  # room for a second job, were one sent

    assert (late.status_code, late.json()["status"]) == (200, "duplicate")
    assert len(await webhooks.rows(notification_id=notification_id)) == 1
    again = await webhooks.row(notification_id)
    assert again is not None
    assert (again.attempts, again.processed_at) == (1, row.processed_at)
    assert _events_for(pipeline_worker, row.id) == ["notification.processed"]
    assert await shop.balance(user_account) == POINTS["coins_100"]


@pytest.mark.parametrize("test_payment", [False, True], ids=["production", "sandbox"])
async def test_notification_before_the_app_reports_credits_the_purchase_once(
    webhooks: Webhooks, shop: Shop, user_account: Account, test_payment: bool
) -> None:
    webhooks.send_from_sandbox(retry_seconds=FAST_RETRIES)
    intent = await shop.intent(user_account, "coins_500")
    created = shop.sandbox.control.create_purchase(
        "coins_500",
        PRICES["coins_500"],
        developer_payload=intent["developerPayload"],
        order_id=intent["orderId"],
        test=test_payment,
    )
    shop.sandbox.control.pay(created["invoiceId"])

    purchase = await webhooks.wait_purchase(created["invoiceId"], PurchaseState.CREDITED)

    assert str(purchase.user_id) == user_account.user_id
    assert purchase.sandbox is test_payment
    rows = await webhooks.rows(invoice_id=created["invoiceId"])
    assert [row.event for row in rows] == ["EXECUTED", "CONFIRMED"]
    assert {row.sandbox for row in rows} == {test_payment}
    reported = await shop.report(
        user_account, created["invoiceId"], created["purchaseId"], "coins_500"
    )
    assert reported.status_code == 202, reported.text
    assert reported.json()["id"] == str(purchase.id)
    assert reported.json()["status"] == "completed"
    await asyncio.sleep(0.5)  # the app's report must not start a second credit
    assert await shop.balance(user_account) == POINTS["coins_500"]


async def test_state_comes_from_rustore_not_from_the_notification(
    webhooks: Webhooks, shop: Shop, user_account: Account
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100", two_stage=True)
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "PAID"
    body = webhooks.invoice_body(created, "CONFIRMED")  # says more than RuStore's API does

    assert (await webhooks.post(body)).status_code == 200
    purchase = await webhooks.wait_purchase(created["invoiceId"], PurchaseState.CREDITED)

    # Kopilka confirmed the hold itself: it acted on RuStore's PAID, not on the claimed CONFIRMED.
    assert shop.sandbox.control.get_purchase(created["invoiceId"])["status"] == "CONFIRMED"
    assert purchase.rustore_status == "CONFIRMED"
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def test_notifications_under_a_rotated_key_are_refused_and_nothing_is_lost(
    webhooks: Webhooks, shop: Shop, user_account: Account
) -> None:
    webhooks.send_from_sandbox(key=generate_webhook_key(), retry_seconds=FAST_RETRIES)

    created = await shop.pay_in_rustore(user_account, "coins_100")
    deliveries = await _settled_deliveries(webhooks, expected=2 * (1 + len(FAST_RETRIES)))

    assert {delivery["statusCode"] for delivery in deliveries} == {400}
    assert await webhooks.rows(invoice_id=created["invoiceId"]) == []
    reported = await shop.report(
        user_account, created["invoiceId"], created["purchaseId"], "coins_100"
    )
    final = await shop.wait_final(user_account, reported.json()["id"])
    assert final["status"] == "completed"
    assert await shop.balance(user_account) == POINTS["coins_100"]


async def _settled_deliveries(webhooks: Webhooks, expected: int) -> list[dict[str, Any]]:
    """The sandbox's delivery log once every attempt, retries included, has been made."""
    async with asyncio.timeout(15):
        while True:
            log = webhooks.sandbox.control.notifications()
            if log["pending"] == 0 and len(log["deliveries"]) >= expected:
                deliveries: list[dict[str, Any]] = log["deliveries"]
                return deliveries
            await asyncio.sleep(0.1)
