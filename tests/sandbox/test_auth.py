"""`POST /public/auth` (§2): signing, every documented error, token use and expiry."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sandbox.keys import generate_key_pair
from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import MSK, auth_body, example, sandbox_now, sign


def test_success_matches_the_documented_shape(sandbox: SandboxHandle, api: httpx.Client) -> None:
    response = api.post("/public/auth", json=auth_body(sandbox))

    assert response.status_code == 200
    body = response.json()
    assert body.keys() == example("auth_ok.json").keys()
    assert body["code"] == "OK"
    assert body["message"] is None
    assert body["body"]["ttl"] == 900
    assert body["body"]["jwe"]
    assert body["timestamp"].endswith("+03:00")


@pytest.mark.parametrize("path", ["/public/auth", "/public/auth/"])
def test_trailing_slash_and_integer_key_id(
    sandbox: SandboxHandle, api: httpx.Client, path: str
) -> None:
    body = auth_body(sandbox) | {"keyId": int(sandbox.key_id)}

    assert api.post(path, json=body).json()["code"] == "OK"


@pytest.mark.parametrize(
    "render",
    [
        lambda t: t.astimezone(UTC).isoformat().replace("+00:00", "Z"),  # toISOString-like
        lambda t: t.astimezone(MSK).isoformat(timespec="seconds"),  # no fraction
        lambda t: t.astimezone(MSK).isoformat(timespec="microseconds")[:-6] + "123+03:00",
    ],
    ids=["utc-z", "no-fraction", "nine-digits"],
)
def test_any_iso_timestamp_with_offset_is_accepted(
    sandbox: SandboxHandle, api: httpx.Client, render: Callable[[datetime], str]
) -> None:
    ts = render(sandbox_now(sandbox))

    assert api.post("/public/auth", json=auth_body(sandbox, ts)).json()["code"] == "OK"


def test_signature_made_by_openssl_is_accepted(
    sandbox: SandboxHandle, api: httpx.Client, tmp_path: Path
) -> None:
    """The vc.ru recipe: decode the Console key, `openssl dgst -sha512 -sign`."""
    key_file = tmp_path / "pkey.der"
    key_file.write_bytes(base64.b64decode(sandbox.private_key))
    ts = sandbox_now(sandbox).astimezone(MSK).isoformat(timespec="milliseconds")
    signature = subprocess.run(
        ["openssl", "dgst", "-sha512", "-keyform", "DER", "-sign", str(key_file)],
        input=(sandbox.key_id + ts).encode(),
        capture_output=True,
        check=True,
    ).stdout
    body = {
        "keyId": sandbox.key_id,
        "timestamp": ts,
        "signature": base64.b64encode(signature).decode(),
    }

    assert api.post("/public/auth", json=body).json()["code"] == "OK"


def _error(response: httpx.Response) -> tuple[int, str, str, object]:
    body = response.json()
    return response.status_code, body["code"], body["message"], body["body"]


def test_timestamp_out_of_range(sandbox: SandboxHandle, api: httpx.Client) -> None:
    stale = (sandbox_now(sandbox) - timedelta(seconds=61)).isoformat()

    response = api.post("/public/auth", json=auth_body(sandbox, stale))

    assert _error(response) == (400, "ERROR", "Range timestamp not valid", None)


def test_unknown_key(sandbox: SandboxHandle, api: httpx.Client) -> None:
    body = auth_body(sandbox) | {"keyId": "1"}

    assert _error(api.post("/public/auth", json=body)) == (
        404,
        "ERROR",
        "Company key not found",
        None,
    )


def test_wrong_signature(sandbox: SandboxHandle, api: httpx.Client) -> None:
    other = generate_key_pair()
    body = auth_body(sandbox)
    body["signature"] = sign(other.private_key, sandbox.key_id + body["timestamp"])

    assert _error(api.post("/public/auth", json=body))[:3] == (
        400,
        "ERROR",
        "Signature encode error",
    )
    body["signature"] = "not base64!"
    assert _error(api.post("/public/auth", json=body))[2] == "Signature encode error"


def test_signature_over_another_timestamp_is_rejected(
    sandbox: SandboxHandle, api: httpx.Client
) -> None:
    body = auth_body(sandbox)
    body["timestamp"] = (sandbox_now(sandbox) + timedelta(seconds=1)).isoformat()

    assert _error(api.post("/public/auth", json=body))[2] == "Signature encode error"


def test_missing_key_id(sandbox: SandboxHandle, api: httpx.Client) -> None:
    body = auth_body(sandbox)
    del body["keyId"]

    assert _error(api.post("/public/auth", json=body)) == (
        400,
        "ERROR",
        "KeyId or companyId must be not null",
        None,
    )


def test_company_id_is_refused(sandbox: SandboxHandle, api: httpx.Client) -> None:
    body = auth_body(sandbox)
    body["companyId"] = body.pop("keyId")

    assert _error(api.post("/public/auth", json=body))[:3] == (
        400,
        "ERROR",
        "Incorrect usage of companyId. Please use keyId",
    )


def test_disabled_and_added_keys(sandbox: SandboxHandle, api: httpx.Client) -> None:
    """Keys registered at run time work; a disabled one gets the documented error."""
    pair = generate_key_pair()
    sandbox.control.register_key(pair.key_id, pair.public_key)
    ts = sandbox_now(sandbox).isoformat()
    body = {
        "keyId": pair.key_id,
        "timestamp": ts,
        "signature": sign(pair.private_key, pair.key_id + ts),
    }
    assert api.post("/public/auth", json=body).json()["code"] == "OK"

    sandbox.control.register_key(pair.key_id, pair.public_key, enabled=False)

    assert _error(api.post("/public/auth", json=body))[:3] == (400, "ERROR", "Company key disabled")


def test_token_is_required_and_expires_after_900_seconds(
    sandbox: SandboxHandle, api: httpx.Client, headers: dict[str, str]
) -> None:
    purchase = sandbox.control.create_purchase("coins", 1000)
    path = f"/public/v2/purchase/{purchase['invoiceId']}"
    assert api.get(path, headers=headers).json()["code"] == "OK"
    assert api.get(path).status_code == 401
    assert api.get(path, headers={"Public-Token": "made-up"}).status_code == 401

    sandbox.control.advance_clock(899)
    assert api.get(path, headers=headers).status_code == 200
    sandbox.control.advance_clock(2)
    response = api.get(path, headers=headers)

    assert response.status_code == 401
    assert response.json().keys() == example("error_jwe_expired.json").keys()
    assert _error(response)[1:] == ("ERROR", "Jwe token is expired", None)
