"""Scenario 16: what does not decrypt or is not a notification for the endpoint gets 400 and
leaves no trace; plus the sandbox endpoint without a key, and the rate-limit exemption."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from api.app import create_app
from api.request_context import RequestContext
from core.settings import load_settings
from sandbox.keys import generate_webhook_key
from tests.fixtures.platform import serve
from tests.fixtures.webhooks import PRODUCTION_PATH, SANDBOX_PATH, Webhooks, envelope, plaintext

TEST_DATA = {"test": "TEST"}


def _tampered(body: bytes) -> bytes:
    """Flip one bit of the GCM tag."""
    fields = json.loads(body)
    raw = bytearray(base64.b64decode(fields["payload"]))
    raw[-1] ^= 0x01
    fields["payload"] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(fields).encode()


def _truncated(body: bytes) -> bytes:
    fields = json.loads(body)
    fields["payload"] = fields["payload"][:-3]
    return json.dumps(fields).encode()


def _too_short(body: bytes) -> bytes:
    fields = json.loads(body)
    fields["payload"] = base64.b64encode(base64.b64decode(fields["payload"])[:20]).decode()
    return json.dumps(fields).encode()


def _sealed(webhooks: Webhooks, content: bytes, notification_id: str = "n-1") -> bytes:
    return envelope(content, webhooks.key(), notification_id, dt.datetime.now(dt.UTC))


BadBody = Callable[[Webhooks], bytes]

CASES: dict[str, tuple[BadBody, str]] = {
    "bad GCM tag": (lambda w: _tampered(w.body("TEST_EVENT", TEST_DATA)), "webhook_undecryptable"),
    "wrong key": (
        lambda w: w.body("TEST_EVENT", TEST_DATA, key=generate_webhook_key()),
        "webhook_undecryptable",
    ),
    "truncated base64": (
        lambda w: _truncated(w.body("TEST_EVENT", TEST_DATA)),
        "webhook_undecryptable",
    ),
    "ciphertext shorter than IV and tag": (
        lambda w: _too_short(w.body("TEST_EVENT", TEST_DATA)),
        "webhook_undecryptable",
    ),
    "body not JSON": (lambda w: b"id=1&payload=2", "webhook_malformed"),
    "body without payload": (lambda w: b'{"id": "n-1"}', "webhook_malformed"),
    "empty notification id": (
        lambda w: w.body("TEST_EVENT", TEST_DATA, notification_id=""),
        "webhook_malformed",
    ),
    "plaintext not JSON": (lambda w: _sealed(w, b"\x00not json"), "webhook_undecryptable"),
    "data not JSON": (
        lambda w: _sealed(
            w, json.dumps({"app_id": 1, "notification_type": "TEST_EVENT", "data": "{"}).encode()
        ),
        "webhook_malformed",
    ),
    "unknown notification type": (
        lambda w: _sealed(w, plaintext("REFUND_EVENT", TEST_DATA)),
        "webhook_unknown_type",
    ),
    "sandbox type on the production endpoint": (
        lambda w: w.body("TEST_EVENT_SANDBOX", TEST_DATA, key=w.key()),
        "webhook_wrong_endpoint",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_refused_delivery_gets_400_and_stores_nothing(webhooks: Webhooks, case: str) -> None:
    make_body, code = CASES[case]
    before = await webhooks.count()

    response = await webhooks.post(make_body(webhooks))

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert await webhooks.count() == before


async def test_production_type_on_the_sandbox_endpoint_is_refused(webhooks: Webhooks) -> None:
    before = await webhooks.count()
    body = webhooks.body("TEST_EVENT", TEST_DATA, key=webhooks.key(sandbox=True))

    response = await webhooks.post(body, sandbox=True)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == "webhook_wrong_endpoint"
    assert await webhooks.count() == before


@pytest.fixture(scope="module")
async def strict_api(base_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An api with a tiny rate limit and no key for test-payment notifications."""
    env = {**base_env, "RATE_LIMIT_PER_MINUTE": "3", "RUSTORE_SANDBOX_WEBHOOK_KEY": ""}
    app = RequestContext(create_app(load_settings(env)))
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


async def test_sandbox_endpoint_without_a_key_is_not_configured(
    strict_api: httpx.AsyncClient, webhooks: Webhooks
) -> None:
    body = webhooks.body("TEST_EVENT_SANDBOX", TEST_DATA)

    response = await webhooks.post(body, sandbox=True, client=strict_api)

    assert response.status_code == 404, response.text
    assert response.json()["code"] == "webhook_not_configured"


async def test_webhooks_are_not_rate_limited(strict_api: httpx.AsyncClient) -> None:
    for _ in range(10):
        response = await strict_api.post(PRODUCTION_PATH, content=b"{}")
        assert response.status_code == 400, response.text
        response = await strict_api.post(SANDBOX_PATH, content=b"{}")
        assert response.status_code == 404, response.text

    statuses = [(await strict_api.get("/api/products/")).status_code for _ in range(10)]
    assert 429 in statuses, "other routes must still be limited"
