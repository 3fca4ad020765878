"""Every public endpoint answers under its production path and its `/public/sandbox` twin, and
each world sees only its own objects (§1: test payments only through the sandbox twins)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle

TWINNED = {
    "v2_purchase": ("GET", "/v2/purchase/{invoiceId}", "confirmed"),
    "confirm": ("PUT", "/applications/{appId}/purchases/{purchaseId}:confirm", "paid"),
    "cancel": ("PUT", "/applications/{appId}/purchases/{purchaseId}:cancel", "paid"),
    "refund": ("PATCH", "/applications/{appId}/invoices/{invoiceId}", "confirmed"),
    "legacy_purchase": ("GET", "/purchase/{purchaseToken}", "confirmed"),
    "legacy_purchase_by_invoice": ("GET", "/purchase?invoiceId={invoiceId}", "confirmed"),
    "v4_subscription": (
        "GET",
        "/v4/subscription/{packageName}/{productCode}/{purchaseId}",
        "subscription",
    ),
    "v2_acknowledge": (
        "POST",
        "/v2/subscription/{packageName}/{productCode}/{purchaseId}:acknowledge",
        "subscription",
    ),
    "legacy_subscription": ("GET", "/subscription/{subscriptionToken}", "subscription"),
    "legacy_subscription_state": ("GET", "/subscription/{subscriptionToken}/state", "subscription"),
    "v3_subscription": (
        "GET",
        "/v3/subscription/{packageName}/{productCode}/{subscriptionToken}",
        "subscription",
    ),
    "glike_acknowledge": (
        "POST",
        "/glike/subscription/{packageName}/{productCode}/{subscriptionToken}:acknowledge",
        "subscription",
    ),
}


def _make(sandbox: SandboxHandle, kind: str, test: bool) -> dict[str, Any]:
    """An object in the state the endpoint needs, plus the path's app-level parameters."""
    control = sandbox.control
    if kind == "subscription":
        made = control.create_subscription("premium", 29900, test=test)
    else:
        made = control.create_purchase("coins", 1000, two_stage=kind == "paid", test=test)
        made = control.pay(made["invoiceId"])
    return made | {"appId": sandbox.app_id, "packageName": sandbox.package_name}


@pytest.mark.parametrize("test", [False, True], ids=["production", "sandbox"])
@pytest.mark.parametrize("endpoint", TWINNED)
def test_each_world_sees_only_its_own_objects(
    sandbox: SandboxHandle,
    api: httpx.Client,
    headers: dict[str, str],
    endpoint: str,
    test: bool,
) -> None:
    method, template, kind = TWINNED[endpoint]
    prefix = "/public/sandbox" if test else "/public"
    own, other = _make(sandbox, kind, test), _make(sandbox, kind, not test)

    mine = api.request(method, prefix + template.format(**own), headers=headers)
    foreign = api.request(method, prefix + template.format(**other), headers=headers)

    assert mine.status_code == 200, mine.text
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "NOT_FOUND"


def test_production_only_endpoints_have_no_sandbox_twin(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    sub = _make(sandbox, "subscription", test=False)
    invoices = (
        f"/applications/{sandbox.app_id}/invoices?invoiceStatuses=CONFIRMED&invoiceDate=2025-01-01"
    )
    glike = f"/glike/subscription/{sandbox.package_name}/premium/{sub['subscriptionToken']}"

    assert api.get("/public" + invoices, headers=headers).status_code == 200
    assert api.get("/public" + glike, headers=headers).json()["purchaseType"] == 0
    assert api.get("/public/sandbox" + invoices, headers=headers).status_code == 404
    # The sandbox twin of the glike *acknowledge* path exists, so GET there is 405, not 404.
    assert api.get("/public/sandbox" + glike, headers=headers).status_code in (404, 405)


def test_unknown_paths_answer_with_the_envelope(api: httpx.Client, headers: dict[str, str]) -> None:
    response = api.get("/public/v9/nothing", headers=headers)

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"
    assert response.json()["body"] is None
