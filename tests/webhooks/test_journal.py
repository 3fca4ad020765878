"""What processing records for each kind of notification, the journal, and the replay."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.notifications.models import NotificationStatus
from core.purchases.models import PurchaseState
from tests.fixtures.accounts import Account
from tests.fixtures.purchases import PRICES, Shop
from tests.fixtures.webhooks import Webhooks

pytestmark = pytest.mark.usefixtures("pipeline_worker")

JOURNAL = "/api/admin/notifications"


def _foreign_purchase(shop: Shop) -> dict[str, Any]:
    """A paid RuStore purchase whose developer payload Kopilka never issued."""
    created = shop.sandbox.control.create_purchase(
        "coins_100", PRICES["coins_100"], developer_payload="issued-by-someone-else"
    )
    return shop.sandbox.control.pay(created["invoiceId"])


@pytest.mark.parametrize("test_payment", [False, True], ids=["production", "sandbox"])
async def test_connection_check_is_recorded_and_processed(
    webhooks: Webhooks, test_payment: bool
) -> None:
    webhooks.send_from_sandbox(retry_seconds=[])
    notification_id = webhooks.sandbox.control.send_test_notification(test=test_payment)
    assert notification_id is not None

    row = await webhooks.wait_done(notification_id)

    assert row.status == NotificationStatus.PROCESSED
    assert row.sandbox is test_payment
    assert row.notification["notification_type"].startswith("TEST_EVENT")


async def test_subscription_event_for_an_unknown_subscription_is_noted(webhooks: Webhooks) -> None:
    body = webhooks.body(
        "SUBSCRIPTION_EVENT",
        {"subscription_event_type": "ACTIVATED", "invoice_id": "77", "purchase_id": "p-77"},
    )

    assert (await webhooks.post(body)).status_code == 200
    row = await webhooks.wait_done(webhooks.id_of(body))

    assert (row.status, row.outcome) == (
        NotificationStatus.PROCESSED,
        "no subscription with RuStore purchase id p-77",
    )
    assert (row.invoice_id, row.purchase_id, row.event) == (77, "p-77", "ACTIVATED")


async def test_notification_of_an_unknown_purchase_is_ignored_with_the_reason(
    webhooks: Webhooks, shop: Shop
) -> None:
    paid = _foreign_purchase(shop)
    body = webhooks.invoice_body(paid, "CONFIRMED")

    assert (await webhooks.post(body)).status_code == 200
    row = await webhooks.wait_done(webhooks.id_of(body))

    assert row.status == NotificationStatus.IGNORED
    assert row.outcome == "the developer payload matches no purchase intent"
    assert await webhooks.purchase(paid["invoiceId"]) is None


async def test_a_rustore_outage_is_retried_and_kept_on_the_row(
    webhooks: Webhooks, shop: Shop, user_account: Account
) -> None:
    created = await shop.pay_in_rustore(user_account, "coins_100")
    # Enough 503s to outlast the client's own retries once; the job's retry then succeeds.
    shop.sandbox.control.set_fault("v2_purchase", error_rate=1, times=4)
    body = webhooks.invoice_body(created, "CONFIRMED")

    assert (await webhooks.post(body)).status_code == 200
    row = await webhooks.wait_done(webhooks.id_of(body))

    assert (row.status, row.attempts) == (NotificationStatus.PROCESSED, 2)
    assert "Something went wrong" in (row.last_error or "")
    await webhooks.wait_purchase(created["invoiceId"], PurchaseState.CREDITED)


async def test_support_reads_the_journal_filtered_and_paged(
    webhooks: Webhooks, shop: Shop, client: httpx.AsyncClient, support_account: Account
) -> None:
    bodies = [webhooks.invoice_body(_foreign_purchase(shop), "CONFIRMED") for _ in range(3)]
    for body in bodies:
        assert (await webhooks.post(body)).status_code == 200
    for body in bodies:
        await webhooks.wait_done(webhooks.id_of(body))

    seen: list[str] = []
    before: str | None = None
    for _ in range(3):
        params = {"status": "ignored", "limit": "1", **({"before": before} if before else {})}
        page = await client.get(JOURNAL, params=params, headers=support_account.headers)
        assert page.status_code == 200, page.text
        [item] = page.json()["items"]
        assert item["status"] == "ignored"
        seen.append(item["notificationId"])
        before = page.json()["nextBefore"]
    assert seen == [webhooks.id_of(body) for body in reversed(bodies)]  # newest first

    refused = await client.get(JOURNAL, params={"status": "lost"}, headers=support_account.headers)
    assert refused.status_code == 400


async def test_users_cannot_read_the_journal(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    response = await client.get(JOURNAL, headers=user_account.headers)
    assert response.status_code == 403
    assert (await client.get(JOURNAL)).status_code == 401


async def test_admin_replays_a_notification_and_it_is_processed_again(
    webhooks: Webhooks,
    shop: Shop,
    client: httpx.AsyncClient,
    admin_account: Account,
    support_account: Account,
) -> None:
    body = webhooks.invoice_body(_foreign_purchase(shop), "CONFIRMED")
    assert (await webhooks.post(body)).status_code == 200
    row = await webhooks.wait_done(webhooks.id_of(body))
    replay = f"{JOURNAL}/{row.id}/replay"

    assert (await client.post(replay, headers=support_account.headers)).status_code == 403
    assert (await client.post(replay)).status_code == 401
    response = await client.post(replay, headers=admin_account.headers)

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received"
    again = await webhooks.wait_done(row.notification_id, attempts=2)
    assert again.status == NotificationStatus.IGNORED
    assert again.processed_at is not None
    assert row.processed_at is not None
    assert again.processed_at > row.processed_at


async def test_replaying_an_unknown_notification_is_404(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await client.post(
        f"{JOURNAL}/00000000-0000-4000-8000-000000000000/replay", headers=admin_account.headers
    )
    assert response.status_code == 404
    assert response.json()["code"] == "notification_not_found"
