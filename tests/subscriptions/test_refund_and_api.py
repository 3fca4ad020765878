"""The api's refusals and the admin refund (RuStore's refund method, on the sandbox), with a
worker process for verification."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from core.subscriptions.models import Subscription
from tests.fixtures.accounts import Account
from tests.fixtures.platform import assert_problem
from tests.fixtures.subscriptions import PREMIUM, Subscriber

pytestmark = pytest.mark.usefixtures("pipeline_worker")


async def test_admin_refund_ends_access_and_is_recorded(
    subscriber: Subscriber,
    user_account: Account,
    admin_account: Account,
) -> None:
    sub = await subscriber.subscribe(user_account)
    url = f"/api/admin/subscriptions/{sub.id}/refund"

    first = await subscriber.client.post(url, headers=admin_account.headers)
    again = await subscriber.client.post(url, headers=admin_account.headers)

    assert first.status_code == 200, first.text
    assert first.json()["state"]["status"] == "refunded"
    assert again.json() == first.json()
    # Once: a second refund at RuStore would be refused ("already refunded") and answer 409.
    row = await subscriber.row(sub.id)
    assert (row.status, str(row.refunded_by), row.next_check_at) == (
        "refunded",
        admin_account.user_id,
        None,
    )
    assert subscriber.sandbox.control.get_subscription(sub.ref)["refunded"] is True
    assert [e for e in await subscriber.entitled(user_account) if e["productId"] == PREMIUM] == []
    renew = await subscriber.client.post("/api/subscriptions/renew", headers=user_account.headers)
    assert renew.json()["subscriptions"] == []


async def test_refund_already_made_in_the_console_is_recorded(
    subscriber: Subscriber, user_account: Account, admin_account: Account
) -> None:
    sub = await subscriber.subscribe(user_account)
    subscriber.sandbox.control.refund_subscription(sub.ref)

    response = await subscriber.client.post(
        f"/api/admin/subscriptions/{sub.id}/refund", headers=admin_account.headers
    )

    assert response.status_code == 200, response.text
    assert response.json()["state"]["status"] == "refunded"


async def test_refund_refused_by_rustore_is_a_conflict(
    subscriber: Subscriber, user_account: Account, admin_account: Account
) -> None:
    sub = await subscriber.subscribe(user_account, trial_seconds=3600)  # nothing charged yet

    response = await subscriber.client.post(
        f"/api/admin/subscriptions/{sub.id}/refund", headers=admin_account.headers
    )

    assert_problem(response, 409, "refund_refused")
    assert (await subscriber.row(sub.id)).refunded_at is None


async def test_refund_without_an_invoice_id_is_invoice_unknown(
    subscriber: Subscriber, user_account: Account, admin_account: Account
) -> None:
    created = await subscriber.buy_in_rustore(user_account)
    subscriber.sandbox.control.renew(created["purchaseId"])  # orderId is now `<id>..0`
    body = {"purchaseId": created["purchaseId"], "subscriptionId": PREMIUM}
    response = await subscriber.verify(user_account, body)
    row = await subscriber.wait_row(response.json()["id"], lambda r: r.verification == "verified")
    assert row.invoice_id is None

    refund = await subscriber.client.post(
        f"/api/admin/subscriptions/{row.id}/refund", headers=admin_account.headers
    )

    assert_problem(refund, 409, "invoice_unknown")


@pytest.mark.parametrize("role", ["user", "support"])
async def test_only_admins_refund(subscriber: Subscriber, make_account: Any, role: str) -> None:
    caller = await make_account(role)
    response = await subscriber.client.post(
        f"/api/admin/subscriptions/{uuid.uuid4()}/refund", headers=caller.headers
    )
    assert_problem(response, 403, "role_required")


async def test_unknown_subscription_refund_is_404(
    subscriber: Subscriber, admin_account: Account
) -> None:
    response = await subscriber.client.post(
        f"/api/admin/subscriptions/{uuid.uuid4()}/refund", headers=admin_account.headers
    )
    assert_problem(response, 404, "not_found")


async def test_cancel_points_to_the_rustore_app(
    subscriber: Subscriber, user_account: Account
) -> None:
    response = await subscriber.client.post(
        "/api/subscriptions/cancel", headers=user_account.headers
    )

    body = assert_problem(response, 409, "cancel_in_rustore")
    assert "RuStore app" in body["detail"]
    assert "subscriptions" in body["detail"]


async def test_another_users_subscription_is_404(
    subscriber: Subscriber, user_account: Account, make_account: Any
) -> None:
    sub = await subscriber.subscribe(user_account)
    stranger = await make_account()

    response = await subscriber.client.get(f"/api/subscriptions/{sub.id}", headers=stranger.headers)

    assert_problem(response, 404, "not_found")
    status = await subscriber.client.get("/api/subscriptions/status", headers=stranger.headers)
    assert status.json() == {"active": False, "subscriptions": []}


@pytest.mark.parametrize(
    "extra", [{"status": "active"}, {"userId": str(uuid.uuid4())}, {"endDate": "2099-01-01"}]
)
async def test_extra_fields_are_refused(
    subscriber: Subscriber, user_account: Account, extra: dict[str, Any]
) -> None:
    body = {"purchaseId": str(uuid.uuid4()), "subscriptionId": PREMIUM, **extra}

    response = await subscriber.verify(user_account, body)

    assert_problem(response, 400, "validation_error")
    found = await subscriber.client.get("/api/subscriptions/status", headers=user_account.headers)
    assert found.json()["subscriptions"] == []


async def test_a_rustore_reference_is_required(
    subscriber: Subscriber, user_account: Account
) -> None:
    response = await subscriber.verify(user_account, {"subscriptionId": PREMIUM})
    assert_problem(response, 400, "validation_error")


async def test_create_refuses_a_one_time_product(
    subscriber: Subscriber, user_account: Account
) -> None:
    response = await subscriber.client.post(
        "/api/subscriptions/create", json={"productId": "no_ads"}, headers=user_account.headers
    )
    assert_problem(response, 400, "unknown_product")


async def test_verify_replays_under_the_same_key_and_dedups_across_keys(
    subscriber: Subscriber, user_account: Account
) -> None:
    created = await subscriber.buy_in_rustore(user_account)
    body = {"purchaseId": created["purchaseId"], "subscriptionId": PREMIUM}

    first = await subscriber.verify(user_account, body, key="k-1")
    replay = await subscriber.verify(user_account, body, key="k-1")
    other_key = await subscriber.verify(user_account, body, key="k-2")

    assert (first.status_code, replay.status_code, other_key.status_code) == (202, 202, 202)
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert other_key.json()["id"] == first.json()["id"]
    row: Subscription = await subscriber.row(first.json()["id"])
    assert row.rustore_purchase_id == created["purchaseId"]
