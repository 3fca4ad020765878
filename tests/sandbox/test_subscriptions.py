"""Subscriptions: the Google-like objects (#6, #12, #13), legacy #10/#11, acknowledgement (#7,
#14), and the life cycle driven by the clock and the control API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import SandboxControlError, SandboxHandle
from tests.sandbox.conftest import example, token_headers

DAY = 86_400
PERIOD = 30 * DAY


class Views:
    """Every public view of one subscription, read with raw HTTP (re-authenticating each time,
    since the tests move the clock far past the token's 900 s)."""

    def __init__(self, sandbox: SandboxHandle, api: httpx.Client) -> None:
        self.sandbox, self.api = sandbox, api

    def _get(self, path: str) -> httpx.Response:
        return self.api.get(path, headers=token_headers(self.sandbox, self.api))

    def _prefix(self, sub: dict[str, Any]) -> str:
        return "/public/sandbox" if sub["test"] else "/public"

    def _tail(self, sub: dict[str, Any]) -> str:
        return f"{self.sandbox.package_name}/{sub['productCode']}"

    def v4(self, sub: dict[str, Any]) -> Any:
        path = f"{self._prefix(sub)}/v4/subscription/{self._tail(sub)}/{sub['purchaseId']}"
        return self._get(path).json()

    def v3(self, sub: dict[str, Any]) -> Any:
        path = f"{self._prefix(sub)}/v3/subscription/{self._tail(sub)}/{sub['subscriptionToken']}"
        return self._get(path).json()

    def glike(self, sub: dict[str, Any]) -> Any:
        return self._get(
            f"/public/glike/subscription/{self._tail(sub)}/{sub['subscriptionToken']}"
        ).json()

    def legacy(self, sub: dict[str, Any]) -> Any:
        return self._get(f"{self._prefix(sub)}/subscription/{sub['subscriptionToken']}").json()

    def is_active(self, sub: dict[str, Any]) -> bool:
        path = f"{self._prefix(sub)}/subscription/{sub['subscriptionToken']}/state"
        active: bool = self._get(path).json()["body"]["is_active"]
        return active


@pytest.fixture
def views(sandbox: SandboxHandle, api: httpx.Client) -> Views:
    return Views(sandbox, api)


def test_v3_matches_the_documented_object(sandbox: SandboxHandle, views: Views) -> None:
    sub = sandbox.control.create_subscription(
        "premium_month", 74900, trial_seconds=30 * DAY, trial_price=59900
    )

    v3 = views.v3(sub)

    documented = example("v3_subscription_ok.json")
    assert v3.keys() == documented.keys()
    assert v3["introductoryPriceInfo"].keys() == documented["introductoryPriceInfo"].keys()
    assert v3["priceAmountMicros"] == "749000000"
    assert v3["introductoryPriceInfo"]["introductoryPriceAmountMicros"] == "599000000"
    assert v3["introductoryPriceInfo"]["introductoryPricePeriod"] == "P30D"
    assert v3["kind"] == "androidpublisher#subscriptionPurchase"
    assert (v3["purchaseType"], v3["paymentState"], v3["autoRenewing"]) == (0, 1, True)
    assert int(v3["expiryTimeMillis"]) - int(v3["startTimeMillis"]) == 30 * DAY * 1000
    assert v3["orderId"] == str(sub["invoiceId"])


def test_v4_is_enveloped_and_carries_the_developer_payload(
    sandbox: SandboxHandle, views: Views
) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, developer_payload="user-42")

    v4 = views.v4(sub)

    assert v4.keys() == {"code", "message", "body", "timestamp"}
    assert v4["body"]["developerPayload"] == "user-42"
    assert v4["body"]["priceAmountMicros"] == "299000000"
    assert "introductoryPriceInfo" not in v4["body"]
    assert {k for k in v4["body"] if k != "developerPayload"} == set(views.v3(sub))


def test_test_subscriptions_only_through_sandbox_paths(
    sandbox: SandboxHandle, views: Views, api: httpx.Client, headers: dict[str, str]
) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, test=True)
    tail = f"{sandbox.package_name}/premium/{sub['purchaseId']}"

    assert views.v4(sub)["body"]["purchaseType"] == 1
    assert views.v3(sub)["purchaseType"] == 1
    assert views.glike(sub)["code"] == "NOT_FOUND"  # glike has no sandbox twin
    assert api.get(f"/public/v4/subscription/{tail}", headers=headers).status_code == 404


def test_lookup_errors(sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]) -> None:
    sub = sandbox.control.create_subscription("premium", 29900)

    wrong_product = api.get(
        f"/public/v4/subscription/{sandbox.package_name}/other/{sub['purchaseId']}", headers=headers
    )
    foreign_package = api.get(
        f"/public/v4/subscription/com.other.app/premium/{sub['purchaseId']}", headers=headers
    )
    token_instead_of_purchase_id = api.get(
        f"/public/v4/subscription/{sandbox.package_name}/premium/{sub['subscriptionToken']}",
        headers=headers,
    )

    assert wrong_product.status_code == 404
    assert wrong_product.json()["message"] == "Purchase not found"
    assert foreign_package.status_code == 403
    assert token_instead_of_purchase_id.status_code == 404


def test_free_trial_then_renewals_number_the_order_id(sandbox: SandboxHandle, views: Views) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, trial_seconds=7 * DAY)
    trial = views.v3(sub)
    assert trial["paymentState"] == 2
    assert trial["introductoryPriceInfo"]["introductoryPriceAmountMicros"] == "0"
    assert views.legacy(sub)["body"]["body"]["currentPeriod"] == "PROMO"

    sandbox.control.advance_clock(7 * DAY + 1)
    first = views.v3(sub)
    sandbox.control.advance_clock(PERIOD)
    second = views.v3(sub)

    assert (first["orderId"], first["paymentState"]) == (f"{sub['invoiceId']}..0", 1)
    assert second["orderId"] == f"{sub['invoiceId']}..1"
    assert int(second["expiryTimeMillis"]) - int(first["expiryTimeMillis"]) == PERIOD * 1000
    assert views.legacy(sub)["body"]["body"]["currentPeriod"] == "STANDARD"


def test_grace_then_hold_then_recovery(sandbox: SandboxHandle, views: Views) -> None:
    sub = sandbox.control.create_subscription(
        "premium", 29900, grace_seconds=3 * DAY, hold_seconds=10 * DAY, retry_seconds=DAY
    )

    state = sandbox.control.fail_renewal(sub["purchaseId"])
    assert (state["status"], state["period"], state["hasAccess"]) == ("ACTIVE", "GRACE", True)
    grace = views.v3(sub)
    assert grace["paymentState"] == 0
    assert views.is_active(sub) is True
    assert views.legacy(sub)["body"]["body"]["currentPeriod"] == "GRACE"

    sandbox.control.advance_clock(3 * DAY + 1)
    hold = sandbox.control.get_subscription(sub["purchaseId"])
    assert (hold["status"], hold["period"], hold["hasAccess"]) == ("PAUSED", "HOLD", False)
    assert views.is_active(sub) is False
    assert views.v3(sub)["paymentState"] == 0

    recovered = sandbox.control.recover(sub["purchaseId"])
    assert (recovered["status"], recovered["period"]) == ("ACTIVE", "MAIN")
    assert views.is_active(sub) is True
    assert views.v3(sub)["paymentState"] == 1
    assert views.v3(sub)["orderId"] == f"{sub['invoiceId']}..0"


def test_recovery_during_grace_keeps_the_paid_time_continuous(
    sandbox: SandboxHandle, views: Views
) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, period_seconds=PERIOD)
    sandbox.control.fail_renewal(sub["purchaseId"], immediately=False)
    sandbox.control.advance_clock(PERIOD + 1)
    assert sandbox.control.get_subscription(sub["purchaseId"])["period"] == "GRACE"
    sandbox.control.recover(sub["purchaseId"])

    expiry = int(views.v3(sub)["expiryTimeMillis"]) - int(views.v3(sub)["startTimeMillis"])

    assert expiry == 2 * PERIOD * 1000


def test_hold_runs_out_and_the_subscription_terminates(
    sandbox: SandboxHandle, views: Views
) -> None:
    sub = sandbox.control.create_subscription(
        "premium", 29900, grace_seconds=DAY, hold_seconds=2 * DAY, retry_seconds=DAY // 2
    )
    sandbox.control.fail_renewal(sub["purchaseId"])

    sandbox.control.advance_clock(3 * DAY + 1)

    state = sandbox.control.get_subscription(sub["purchaseId"])
    assert (state["status"], state["cancelReason"], state["autoRenewing"]) == (
        "TERMINATED",
        1,
        False,
    )
    v3 = views.v3(sub)
    assert "paymentState" not in v3
    assert v3["cancelReason"] == 1
    assert views.legacy(sub)["body"]["body"]["state"] == "DECLINED"
    assert views.is_active(sub) is False
    with pytest.raises(SandboxControlError):
        sandbox.control.renew(sub["purchaseId"])


def test_user_cancel_keeps_access_until_the_period_ends(
    sandbox: SandboxHandle, views: Views
) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, period_seconds=PERIOD)

    cancelled = sandbox.control.cancel_subscription(sub["purchaseId"])
    assert (cancelled["autoRenewing"], cancelled["hasAccess"]) == (False, True)
    assert views.v3(sub)["autoRenewing"] is False
    assert views.legacy(sub)["body"]["body"]["recurrent"] is False
    sandbox.control.advance_clock(PERIOD + 1)

    v3 = views.v3(sub)
    assert v3["cancelReason"] == 0
    assert "paymentState" not in v3
    assert views.is_active(sub) is False
    assert views.legacy(sub)["body"]["body"]["state"] == "CLOSED"
    assert sandbox.control.get_subscription(sub["purchaseId"])["status"] == "CLOSED"


def test_refund_revokes_the_subscription(sandbox: SandboxHandle, views: Views) -> None:
    sub = sandbox.control.create_subscription("premium", 29900)

    sandbox.control.refund_subscription(sub["purchaseId"])

    assert views.legacy(sub)["body"]["body"]["state"] == "REFUNDED"
    assert views.is_active(sub) is False
    with pytest.raises(SandboxControlError, match="already been refunded"):
        sandbox.control.refund_subscription(sub["purchaseId"])


def test_test_subscriptions_close_after_twelve_charges(sandbox: SandboxHandle) -> None:
    sub = sandbox.control.create_subscription("premium", 100, test=True, period_seconds=600)

    sandbox.control.advance_clock(600 * 12 + 1)

    state = sandbox.control.get_subscription(sub["purchaseId"])
    assert (state["status"], state["charges"], state["cancelReason"]) == ("CLOSED", 12, 1)


def test_acknowledge_v2_and_glike(
    sandbox: SandboxHandle, views: Views, api: httpx.Client, headers: dict[str, str]
) -> None:
    first = sandbox.control.create_subscription("premium", 29900)
    second = sandbox.control.create_subscription("premium", 29900, test=True)
    assert views.v3(first)["acknowledgementState"] == 0
    tail = f"{sandbox.package_name}/premium"

    v2 = api.post(
        f"/public/v2/subscription/{tail}/{first['purchaseId']}:acknowledge", headers=headers
    )
    glike = api.post(
        f"/public/sandbox/glike/subscription/{tail}/{second['subscriptionToken']}:acknowledge",
        headers=headers,
    )

    assert v2.status_code == 200
    assert v2.json()["code"] == "OK"
    assert v2.json()["body"] is None
    assert glike.status_code == 200
    assert glike.content == b""
    assert views.v3(first)["acknowledgementState"] == 1
    assert views.v3(second)["acknowledgementState"] == 1


def test_legacy_subscription_shape(sandbox: SandboxHandle, views: Views) -> None:
    sub = sandbox.control.create_subscription("premium", 29900, trial_seconds=3 * DAY)

    legacy = views.legacy(sub)

    assert legacy["code"] == "OK"
    inner = legacy["body"]
    assert (inner["code"], inner["success"]) == (0, True)
    body = inner["body"]
    assert body["productCode"] == "premium"
    assert body["price"] == 29900
    assert body["state"] == "ACTIVATED"
    assert body["recurrent"] is True
    assert [p["periodName"] for p in body["periods"]] == ["PROMO", "STANDARD"]
