"""End to end against the RuStore sandbox, with a worker process: a subscription's life.

The sandbox drives RuStore's side (renew, failing card, recovery, the user's cancel); the app's
"renew" call (POST /api/subscriptions/renew) sends `subscription.check` to the worker. Clock
advances stay small (seconds): RuStore's auth refuses timestamps a minute off its clock.
"""

from __future__ import annotations

import pytest

from tests.fixtures.accounts import Account, MakeAccount
from tests.fixtures.sandbox import SandboxHandle
from tests.fixtures.subscriptions import PREMIUM, Subscriber

pytestmark = pytest.mark.usefixtures("pipeline_worker")

GRACE_SECONDS = 5


def premium(entitlements: list[dict[str, object]]) -> list[dict[str, object]]:
    return [item for item in entitlements if item["productId"] == PREMIUM]


async def test_renewal_grace_hold_and_recovery(
    subscriber: Subscriber, user_account: Account, sandbox_reset: SandboxHandle
) -> None:
    control = sandbox_reset.control
    sub = await subscriber.subscribe(
        user_account, period_seconds=3600, grace_seconds=GRACE_SECONDS, retry_seconds=3600
    )
    first = await subscriber.state(user_account, sub)
    assert (first["status"], first["period"], first["autoRenewing"]) == ("active", "main", True)
    assert control.get_subscription(sub.ref)["acknowledged"] is True

    control.renew(sub.ref)
    renewed = await subscriber.recheck(user_account, sub)
    assert renewed.status == "active"
    assert renewed.expires_at is not None
    assert renewed.rustore_order_id is not None
    assert renewed.expires_at.isoformat() > first["endDate"]
    assert renewed.rustore_order_id.endswith("..0")

    control.fail_renewal(sub.ref, immediately=True)
    grace = await subscriber.recheck(user_account, sub)
    assert (grace.status, grace.period) == ("grace", "grace")
    assert [item["status"] for item in premium(await subscriber.entitled(user_account))] == [
        "grace"
    ]

    control.advance_clock(GRACE_SECONDS + 1)
    hold = await subscriber.recheck(user_account, sub)
    assert (hold.status, hold.period) == ("on_hold", "hold")
    assert premium(await subscriber.entitled(user_account)) == []
    status = (
        await subscriber.client.get("/api/subscriptions/status", headers=user_account.headers)
    ).json()
    assert status["active"] is False

    control.recover(sub.ref)
    recovered = await subscriber.recheck(user_account, sub)
    assert (recovered.status, recovered.period, recovered.dunning_checks) == ("active", "main", 0)
    [entitlement] = premium(await subscriber.entitled(user_account))
    assert entitlement["source"] == "subscription"
    assert entitlement["sourceId"] == sub.id


async def test_cancelled_keeps_access_until_the_period_ends_then_expires(
    subscriber: Subscriber, user_account: Account, sandbox_reset: SandboxHandle
) -> None:
    sub = await subscriber.subscribe(user_account, period_seconds=3600)

    sandbox_reset.control.cancel_subscription(sub.ref)
    cancelled = await subscriber.recheck(user_account, sub)
    assert (cancelled.status, cancelled.auto_renewing) == ("cancelled", False)
    [entitlement] = premium(await subscriber.entitled(user_account))
    assert entitlement["until"] == (await subscriber.state(user_account, sub))["endDate"]

    sandbox_reset.control.renew(sub.ref)  # the paid period ends now; with auto-renew off: closed
    expired = await subscriber.recheck(user_account, sub)
    assert expired.status == "expired"
    assert expired.next_check_at is None
    assert premium(await subscriber.entitled(user_account)) == []
    profile = (
        await subscriber.client.get("/api/user/profile", headers=user_account.headers)
    ).json()
    assert profile["subscription"]["status"] == "expired"


async def test_free_trial_is_reported_as_trial(
    subscriber: Subscriber, user_account: Account, sandbox_reset: SandboxHandle
) -> None:
    sub = await subscriber.subscribe(user_account, trial_seconds=600, trial_price=0)

    state = await subscriber.state(user_account, sub)
    assert (state["status"], state["period"]) == ("active", "trial")
    profile = (
        await subscriber.client.get("/api/user/profile", headers=user_account.headers)
    ).json()
    assert profile["subscription"]["period"] == "trial"


async def test_legacy_token_is_verified_with_v3(
    subscriber: Subscriber, user_account: Account, sandbox_reset: SandboxHandle
) -> None:
    created = await subscriber.buy_in_rustore(user_account)
    body = {"subscriptionToken": created["subscriptionToken"], "subscriptionId": PREMIUM}

    response = await subscriber.verify(user_account, body)

    assert response.status_code == 202, response.text
    row = await subscriber.wait_row(
        response.json()["id"],
        lambda r: r.verification != "verifying" and r.verification != "pending",
    )
    assert (row.verification, row.status, row.rustore_purchase_id) == ("verified", "active", None)
    assert row.invoice_id == created["invoiceId"]  # the first charge's orderId


async def test_subscription_is_bound_to_the_payload_owner_not_the_submitter(
    subscriber: Subscriber, make_account: MakeAccount, sandbox_reset: SandboxHandle
) -> None:
    owner, submitter = await make_account(), await make_account()
    created = await subscriber.buy_in_rustore(owner)

    response = await subscriber.report(submitter, created)
    row = await subscriber.wait_row(response.json()["id"], lambda r: r.verification == "verified")

    assert str(row.user_id) == owner.user_id
    foreign = await subscriber.client.get(f"/api/subscriptions/{row.id}", headers=submitter.headers)
    assert foreign.status_code == 404


async def test_foreign_payload_is_rejected(
    subscriber: Subscriber, user_account: Account, sandbox_reset: SandboxHandle
) -> None:
    created = sandbox_reset.control.create_subscription(
        PREMIUM, 29_900, period_seconds=3600, developer_payload="kp1.not-one-of-ours"
    )

    response = await subscriber.report(user_account, created)
    row = await subscriber.wait_row(response.json()["id"], lambda r: r.verification == "rejected")

    assert row.failure_reason == "developer payload does not match an intent for this product"
    assert premium(await subscriber.entitled(user_account)) == []
