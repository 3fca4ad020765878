"""Fault modes as an ordinary httpx client sees them."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import auth_body


@pytest.fixture
def purchase_path(sandbox: SandboxHandle) -> str:
    purchase = sandbox.control.create_purchase("coins", 1000)
    return f"/public/v2/purchase/{purchase['invoiceId']}"


def test_latency(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    sandbox.control.set_fault("v2_purchase", latency_ms=400)

    started = time.monotonic()
    response = api.get(purchase_path, headers=headers)

    assert time.monotonic() - started >= 0.4
    assert response.json()["code"] == "OK"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(
    sandbox: SandboxHandle,
    api: httpx.Client,
    headers: dict[str, str],
    purchase_path: str,
    status: int,
) -> None:
    sandbox.control.set_fault("v2_purchase", error_rate=1, error_status=status)

    response = api.get(purchase_path, headers=headers)

    assert response.status_code == status
    assert response.json()["code"] == "ERROR"
    assert response.json()["body"] is None


def test_rate_limit(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    sandbox.control.set_fault("*", rate_limit_rate=1)

    response = api.get(purchase_path, headers=headers)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"


def test_hang_until_the_client_gives_up(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    sandbox.control.set_fault("v2_purchase", hang_rate=1, times=1)

    with pytest.raises(httpx.ReadTimeout):
        api.get(purchase_path, headers=headers, timeout=0.5)
    assert api.get(purchase_path, headers=headers).status_code == 200


def test_malformed_body(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    sandbox.control.set_fault("v2_purchase", malformed_rate=1)

    response = api.get(purchase_path, headers=headers)

    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_connection_reset(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    sandbox.control.set_fault("v2_purchase", reset_rate=1)

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
        api.get(purchase_path, headers=headers)


def test_times_limits_a_rule_and_auth_can_be_faulted(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    sandbox.control.set_fault("auth", error_rate=1, times=2)

    statuses = [api.post("/public/auth", json=auth_body(sandbox)).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert sandbox.control.faults() == []


def test_path_glob_hits_only_matching_paths_in_both_twins(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    test = sandbox.control.create_purchase("coins", 1000, test=True, two_stage=True)
    sandbox.control.pay(test["invoiceId"])
    sandbox.control.set_fault("/public/*:confirm", error_rate=1)
    confirm = (
        f"/public/sandbox/applications/{sandbox.app_id}/purchases/{test['purchaseId']}:confirm"
    )

    assert api.put(confirm, headers=headers).status_code == 503
    assert api.get(purchase_path, headers=headers).status_code == 200
    assert sandbox.control.get_purchase(test["invoiceId"])["status"] == "PAID"


def test_control_api_is_never_faulted_and_clear_works(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str], purchase_path: str
) -> None:
    sandbox.control.set_fault("*", error_rate=1)

    assert sandbox.control.health()["status"] == "ok"
    assert api.get(purchase_path, headers=headers).status_code == 503
    sandbox.control.clear_faults()
    assert api.get(purchase_path, headers=headers).status_code == 200
