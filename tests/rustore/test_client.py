"""RuStoreClient over real HTTP against the scripted fake: auth, retries, errors, wire format."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from core.rustore import (
    InvoiceInfo,
    InvoicePayment,
    InvoiceStatus,
    RuStoreAuthError,
    RuStoreClient,
    RuStoreNotFound,
    RuStorePermanentError,
    RuStoreTransientError,
    SubscriptionState,
)
from devstack.ports import free_port
from tests.fixtures.purchases import eventually
from tests.rustore.conftest import APP_ID, PACKAGE, ClientFactory, console_key
from tests.rustore.fake_rustore import OK_EMPTY, FakeRuStore, Reply, error, ok

PURCHASE_PATH = "/public/v2/purchase/777"
CONFIRM_PATH = f"/public/applications/{APP_ID}/purchases/abc-123:confirm"


def payment(invoice_id: int = 777, status: str = "PAID") -> dict[str, Any]:
    return {
        "invoiceId": invoice_id,
        "invoiceDate": "2025-04-01T12:00:00+03:00",
        "invoiceStatus": status,
        "appId": APP_ID,
        "ownerCode": 1,
        "developerPayload": "user-1",
        "paymentInfo": None,
        "order": {"orderId": "o-1", "amountCreate": 19900, "amountCurrent": 14900},
    }


# --- Auth and the token cache ---


async def test_token_is_cached_between_calls(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))

    first = await client.get_purchase(777)
    await client.get_purchase("777")

    assert first.status is InvoiceStatus.PAID
    assert first.order is not None
    assert first.order.amount_current == 14900
    assert fake.auth_count == 1
    calls = fake.seen("GET", PURCHASE_PATH)
    assert len(calls) == 2
    assert calls[0].headers["public-token"] == calls[1].headers["public-token"]
    assert "authorization" not in calls[0].headers


async def test_fifty_concurrent_calls_share_one_auth(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.auth_delay = 0.2  # keep the first auth in flight while the other 49 arrive
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))

    results = await asyncio.gather(*(client.get_purchase(777) for _ in range(50)))

    assert len(results) == 50
    assert fake.auth_count == 1
    assert len(fake.seen("GET", PURCHASE_PATH)) == 50


async def test_expired_token_reauthenticates_once_and_retries(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))
    await client.get_purchase(777)
    fake.expire_tokens()  # RuStore now answers 401 "Jwe token is expired" to the cached token

    result = await client.get_purchase(777)

    assert result.invoice_id == 777
    assert fake.auth_count == 2
    tokens = [r.headers["public-token"] for r in fake.seen("GET", PURCHASE_PATH)]
    assert len(tokens) == 3
    assert tokens[1] == tokens[0] != tokens[2]  # refused, then the fresh one


async def test_concurrent_401s_share_one_reauth(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))
    await client.get_purchase(777)
    fake.expire_tokens()

    await asyncio.gather(*(client.get_purchase(777) for _ in range(20)))

    assert fake.auth_count == 2


async def test_token_refused_twice_is_auth_error(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(403, error("Forbidden")))

    with pytest.raises(RuStoreAuthError) as caught:
        await client.get_purchase(777)

    assert caught.value.status == 403
    assert caught.value.rustore_message == "Forbidden"
    assert fake.auth_count == 2
    assert len(fake.seen("GET", PURCHASE_PATH)) == 2


async def test_clock_skew_is_named_in_the_auth_error(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.clock_offset = 90.0  # RuStore's clock 90 s ahead of ours

    with pytest.raises(RuStoreAuthError, match="clock skew") as caught:
        await client.get_purchase(777)

    assert caught.value.rustore_message == "Range timestamp not valid"
    assert "about 90 s behind" in str(caught.value)
    assert fake.auth_count == 1  # auth errors are not retried inside the client


async def test_wrong_private_key_gives_signature_error(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = make_client(private_key=console_key(other))

    with pytest.raises(RuStoreAuthError, match="private key does not match") as caught:
        await client.get_purchase(777)

    assert caught.value.rustore_message == "Signature encode error"


async def test_unreadable_private_key_fails_the_call_not_the_constructor(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    client = make_client(private_key="not-a-real-key")

    with pytest.raises(RuStoreAuthError, match="PKCS#8"):
        await client.get_purchase(777)

    assert fake.requests == []


async def test_auth_ok_without_jwe_is_auth_error(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.auth_replies = [Reply(body={"code": "OK", "message": None, "body": None})]

    with pytest.raises(RuStoreAuthError, match=r"without body\.jwe"):
        await client.get_purchase(777)


async def test_auth_server_error_is_retried(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.auth_replies = [Reply(502, b"<html>Bad gateway</html>")]
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))

    await client.get_purchase(777)

    assert fake.auth_count == 2


# --- Retries and error classification ---


async def test_server_error_then_success_is_retried(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(500, error("Internal")), Reply(body=ok(payment())))

    result = await client.get_purchase(777)

    assert result.invoice_id == 777
    assert len(fake.seen("GET", PURCHASE_PATH)) == 2


async def test_persistent_503_gives_up_within_the_budget(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    client = make_client(retry_budget=1.0, max_attempts=100)
    fake.on("GET", PURCHASE_PATH, Reply(503, b"Service Unavailable"))

    started = time.monotonic()
    with pytest.raises(RuStoreTransientError) as caught:
        await client.get_purchase(777)
    elapsed = time.monotonic() - started

    assert caught.value.status == 503
    assert elapsed < 1.0 + 0.5
    assert len(fake.seen("GET", PURCHASE_PATH)) >= 3  # it did retry


async def test_429_with_long_retry_after_is_raised_for_the_queue(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(429, error("Too many requests"), {"Retry-After": "30"}))

    with pytest.raises(RuStoreTransientError) as caught:
        await client.get_purchase(777)

    assert caught.value.retry_after == 30
    assert caught.value.ambiguous is False
    assert len(fake.seen("GET", PURCHASE_PATH)) == 1  # 30 s does not fit in a 1 s budget


async def test_429_then_success_is_retried(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(429, b""), Reply(body=ok(payment())))

    assert (await client.get_purchase(777)).invoice_id == 777


async def test_connection_reset_is_retried(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(action="reset"), Reply(body=ok(payment())))

    assert (await client.get_purchase(777)).invoice_id == 777
    assert len(fake.seen("GET", PURCHASE_PATH)) == 2


async def test_persistent_reset_is_transient(fake: FakeRuStore, client: RuStoreClient) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(action="reset"))

    with pytest.raises(RuStoreTransientError) as caught:
        await client.get_purchase(777)

    assert caught.value.status is None
    assert caught.value.ambiguous is True


async def test_hanging_server_times_out_within_the_budget(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    client = make_client(read_timeout=0.3, retry_budget=0.5, max_attempts=5)
    fake.on("GET", PURCHASE_PATH, Reply(action="hang"))

    started = time.monotonic()
    with pytest.raises(RuStoreTransientError, match="ReadTimeout"):
        await client.get_purchase(777)
    elapsed = time.monotonic() - started

    # Bound: the retry budget plus one attempt's read timeout, plus scheduling slack.
    assert elapsed < 0.5 + 0.3 + 0.4


async def test_malformed_success_body_is_transient(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(200, b'{"code": "OK", "body": {"invoiceId": '))

    with pytest.raises(RuStoreTransientError, match="malformed") as caught:
        await client.get_purchase(777)

    assert caught.value.status == 200
    assert len(fake.seen("GET", PURCHASE_PATH)) > 1


async def test_ok_envelope_without_body_is_transient(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(200, {"code": "OK", "message": None, "body": None}))

    with pytest.raises(RuStoreTransientError, match="without a body"):
        await client.get_purchase(777)


@pytest.mark.parametrize("status", [400, 200])
async def test_purchase_must_be_paid_is_permanent(
    fake: FakeRuStore, client: RuStoreClient, status: int
) -> None:
    fake.on("PUT", CONFIRM_PATH, Reply(status, error("Purchase status must be PAID")))

    with pytest.raises(RuStorePermanentError) as caught:
        await client.confirm_purchase("abc-123")

    assert type(caught.value) is RuStorePermanentError
    assert caught.value.rustore_message == "Purchase status must be PAID"
    assert caught.value.code == "ERROR"
    assert len(fake.seen("PUT", CONFIRM_PATH)) == 1


@pytest.mark.parametrize("status", [404, 400, 200])
async def test_purchase_not_found(fake: FakeRuStore, client: RuStoreClient, status: int) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(status, error("Purchase not found")))

    with pytest.raises(RuStoreNotFound) as caught:
        await client.get_purchase(777)

    assert caught.value.rustore_message == "Purchase not found"
    assert len(fake.seen("GET", PURCHASE_PATH)) == 1


async def test_already_refunded_is_permanent(fake: FakeRuStore, client: RuStoreClient) -> None:
    path = f"/public/applications/{APP_ID}/invoices/777"
    fake.on("PATCH", path, Reply(400, error("Invoice has already been refunded")))

    with pytest.raises(RuStorePermanentError, match="already been refunded"):
        await client.refund_invoice(777)


# A reset too: aiohttp would resend a PUT once after a dropped connection (see its transport).
@pytest.mark.parametrize("failure", [Reply(503, b""), Reply(action="reset")], ids=["503", "reset"])
async def test_confirm_is_not_repeated_after_an_ambiguous_failure(
    fake: FakeRuStore, client: RuStoreClient, failure: Reply
) -> None:
    fake.on("PUT", CONFIRM_PATH, failure, Reply(body=OK_EMPTY))

    with pytest.raises(RuStoreTransientError) as caught:
        await client.confirm_purchase("abc-123")

    assert caught.value.ambiguous is True
    assert len(fake.seen("PUT", CONFIRM_PATH)) == 1


async def test_confirm_is_retried_when_rustore_certainly_did_not_act(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("PUT", CONFIRM_PATH, Reply(429, b""), Reply(body=OK_EMPTY))

    await client.confirm_purchase("abc-123")

    assert len(fake.seen("PUT", CONFIRM_PATH)) == 2


async def test_confirm_gets_the_longer_read_timeout(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    client = make_client(read_timeout=0.2, confirm_read_timeout=2.0, retry_budget=0)
    fake.on("PUT", CONFIRM_PATH, Reply(body=OK_EMPTY, delay=0.5))
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment()), delay=0.5))

    await client.confirm_purchase("abc-123")
    with pytest.raises(RuStoreTransientError, match="ReadTimeout"):
        await client.get_purchase(777)


# --- Transport: what counts as sent ---


async def test_refused_connection_is_not_ambiguous(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    client = make_client(api_url=f"http://127.0.0.1:{free_port()}", retry_budget=0.2)

    with pytest.raises(RuStoreTransientError, match="ConnectError") as caught:
        await client.confirm_purchase("abc-123")

    assert caught.value.ambiguous is False


async def test_waiting_for_a_pooled_connection_times_out_as_not_sent(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    client = make_client(
        max_connections=1, pool_timeout=0.2, connect_timeout=0.2, read_timeout=5, retry_budget=0
    )
    fake.on("GET", "/public/v2/purchase/778", Reply(body=ok(payment(778))))
    fake.on("GET", PURCHASE_PATH, Reply(action="hang"))
    await client.get_purchase(778)  # the token, fetched before the pool's one connection is held
    holder = asyncio.create_task(client.get_purchase(777))
    await eventually(lambda: bool(fake.seen("GET", PURCHASE_PATH)), within=2)

    with pytest.raises(RuStoreTransientError, match="ConnectTimeout") as caught:
        await client.confirm_purchase("abc-123")

    assert caught.value.ambiguous is False
    assert not fake.seen("PUT")
    holder.cancel()


async def test_compressed_answer_is_decoded_once(fake: FakeRuStore, client: RuStoreClient) -> None:
    body = gzip.compress(json.dumps(ok(payment())).encode())
    fake.on("GET", PURCHASE_PATH, Reply(body=body, headers={"Content-Encoding": "gzip"}))

    assert (await client.get_purchase(777)).invoice_id == 777


# --- Wire format ---


async def test_action_colon_is_not_escaped_but_ids_are(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    fake.on("PUT", CONFIRM_PATH, Reply(body=OK_EMPTY))
    await client.confirm_purchase("abc-123")
    assert fake.seen("PUT")[0].target == CONFIRM_PATH

    hostile = f"/public/applications/{APP_ID}/purchases/x%2F..%3Fa%3Acancel:confirm"
    fake.on("PUT", hostile, Reply(body=OK_EMPTY))
    await client.confirm_purchase("x/..?a:cancel")
    assert fake.seen("PUT")[1].target == hostile


async def test_invoice_list_query_repeats_statuses(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    path = f"/public/applications/{APP_ID}/invoices"
    page = {"content": [payment()], "pageNumber": 1, "pageSize": 5, "totalElements": 6}
    fake.on("GET", path, Reply(body=ok({**page, "totalPages": 2})))

    result = await client.list_invoices(
        date(2025, 3, 1), [InvoiceStatus.CONFIRMED, "refunded"], page_number=1, page_size=5
    )

    assert result.total_elements == 6
    assert len(result.content) == 1
    assert fake.seen("GET", path)[0].target == (
        f"{path}?invoiceStatuses=CONFIRMED&invoiceStatuses=refunded"
        "&invoiceDate=2025-03-01&pageNumber=1&pageSize=5"
    )


async def test_iter_invoices_walks_every_page(fake: FakeRuStore, client: RuStoreClient) -> None:
    path = f"/public/applications/{APP_ID}/invoices"

    def page(number: int, ids: list[int]) -> Reply:
        body = {
            "content": [payment(i, "CONFIRMED") for i in ids],
            "pageNumber": number,
            "pageSize": 2,
            "totalElements": 5,
            "totalPages": 3,
        }
        return Reply(body=ok(body))

    fake.on("GET", path, page(0, [1, 2]), page(1, [3, 4]), page(2, [5]))

    seen = [
        p.invoice_id
        async for p in client.iter_invoices(date(2025, 3, 1), ["CONFIRMED"], page_size=2)
    ]

    assert seen == [1, 2, 3, 4, 5]
    assert [r.query["pageNumber"] for r in fake.seen("GET", path)] == [["0"], ["1"], ["2"]]


SUBSCRIPTION = {
    "startTimeMillis": "1694431707000",
    "expiryTimeMillis": "1697034507000",
    "autoRenewing": True,
    "priceCurrencyCode": "RUB",
    "priceAmountMicros": "749000000",
    "orderId": "33252..1",
    "acknowledgementState": 0,
    "purchaseType": 1,
    "developerPayload": "user-1",
}
SMARTPAY = {
    "code": 0,
    "success": True,
    "message": "",
    "body": {"subscriptionId": 9, "state": "ACTIVATED", "currentPeriod": "STANDARD", "price": 100},
}
LEGACY_INVOICE = {"invoice_id": "2850", "invoice_status": "confirmed"}

SUB = f"subscription/{PACKAGE}/daily"


@dataclass(frozen=True)
class Call:
    """One client method: how it is called, what it must put on the wire, what it returns."""

    name: str
    args: tuple[Any, ...]
    http_method: str
    tail: str
    """The path after `/public` (or `/public/sandbox`)."""
    reply: Any
    expect: Callable[[Any], bool]
    query: str = ""
    has_twin: bool = True


CALLS = [
    Call("get_purchase", (777,), "GET", "/v2/purchase/777", ok(payment()),
         lambda r: isinstance(r, InvoicePayment) and r.invoice_id == 777),
    Call("confirm_purchase", ("p-1",), "PUT", f"/applications/{APP_ID}/purchases/p-1:confirm",
         OK_EMPTY, lambda r: r is None),
    Call("cancel_purchase", ("p-1",), "PUT", f"/applications/{APP_ID}/purchases/p-1:cancel",
         OK_EMPTY, lambda r: r is None),
    Call("refund_invoice", (777,), "PATCH", f"/applications/{APP_ID}/invoices/777",
         OK_EMPTY, lambda r: r is None),
    Call("get_subscription", ("daily", "p-1"), "GET", f"/v4/{SUB}/p-1", ok(SUBSCRIPTION),
         lambda r: r.price_amount_micros == 749_000_000 and r.developer_payload == "user-1"),
    Call("acknowledge_subscription", ("daily", "p-1"), "POST", f"/v2/{SUB}/p-1:acknowledge",
         ok(None), lambda r: r is None),
    Call("get_purchase_by_token", ("111.123",), "GET", "/purchase/111.123", ok(LEGACY_INVOICE),
         lambda r: isinstance(r, InvoiceInfo) and r.status is InvoiceStatus.CONFIRMED),
    Call("get_purchase_v1", (2850,), "GET", "/purchase", ok(LEGACY_INVOICE),
         lambda r: isinstance(r, InvoiceInfo) and r.invoice_id == "2850", query="?invoiceId=2850"),
    Call("get_legacy_subscription", ("111.123",), "GET", "/subscription/111.123", ok(SMARTPAY),
         lambda r: r.subscription_id == 9 and r.subscription_state is SubscriptionState.ACTIVATED),
    Call("get_subscription_state", ("111.123",), "GET", "/subscription/111.123/state",
         ok({"is_active": True}), lambda r: r is True),
    Call("get_subscription_v3", ("daily", "111.123"), "GET", f"/v3/{SUB}/111.123", SUBSCRIPTION,
         lambda r: r.price_amount_micros == 749_000_000 and r.is_test),
    Call("get_subscription_glike", ("daily", "111.123"), "GET", f"/glike/{SUB}/111.123",
         SUBSCRIPTION, lambda r: r.expiry_time_millis == 1697034507000, has_twin=False),
    Call("acknowledge_subscription_glike", ("daily", "111.123"), "POST",
         f"/glike/{SUB}/111.123:acknowledge", None, lambda r: r is None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "sandbox"),
    [
        pytest.param(call, sandbox, id=f"{call.name}-{'sandbox' if sandbox else 'production'}")
        for call in CALLS
        for sandbox in (False, True)
        if call.has_twin or not sandbox  # no sandbox twin documented for glike v2
    ],
)
async def test_every_method_path_and_sandbox_prefix(
    fake: FakeRuStore, client: RuStoreClient, call: Call, sandbox: bool
) -> None:
    path = ("/public/sandbox" if sandbox else "/public") + call.tail
    fake.on(call.http_method, path, Reply(body=call.reply))
    kwargs = {"sandbox": True} if sandbox else {}

    result = await getattr(client, call.name)(*call.args, **kwargs)

    assert [r.target for r in fake.seen(call.http_method, path)] == [path + call.query]
    assert call.expect(result)


async def test_legacy_subscription_without_inner_body_uses_inner_message(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    inner = {"code": 40401, "success": False, "message": "Subscription not found", "body": None}
    fake.on("GET", "/public/subscription/1.2", Reply(body=ok(inner)))

    with pytest.raises(RuStoreNotFound, match="Subscription not found"):
        await client.get_legacy_subscription("1.2")


async def test_bare_v3_error_envelope_is_classified(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    path = f"/public/v3/subscription/{PACKAGE}/daily/1.2"
    fake.on("GET", path, Reply(200, error("Bad request")))

    with pytest.raises(RuStorePermanentError, match="Bad request"):
        await client.get_subscription_v3("daily", "1.2")


async def test_glike_acknowledge_error_envelope_is_raised(
    fake: FakeRuStore, client: RuStoreClient
) -> None:
    path = f"/public/glike/subscription/{PACKAGE}/daily/1.2:acknowledge"
    fake.on("POST", path, Reply(400, error("Subscription not found")))

    with pytest.raises(RuStoreNotFound):
        await client.acknowledge_subscription_glike("daily", "1.2")


@pytest.mark.parametrize("purchase_id", ["", ".", ".."])
async def test_ids_that_would_change_the_route_are_refused(
    fake: FakeRuStore, client: RuStoreClient, purchase_id: str
) -> None:
    with pytest.raises(ValueError, match="not a valid id"):
        await client.confirm_purchase(purchase_id)

    assert fake.requests == []


# --- Observability ---


async def test_observer_sees_every_call_with_its_outcome(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    calls: list[tuple[str, str, float]] = []
    client = make_client(
        observer=lambda name, outcome, latency: calls.append((name, outcome, latency))
    )
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))
    fake.on("GET", "/public/v2/purchase/1", Reply(404, error("Purchase not found")))

    await client.get_purchase(777)
    with pytest.raises(RuStoreNotFound):
        await client.get_purchase(1)

    assert [(name, outcome) for name, outcome, _ in calls] == [
        ("auth", "ok"),
        ("get_purchase", "ok"),
        ("get_purchase", "not_found"),
    ]
    assert all(latency >= 0 for _, _, latency in calls)


async def test_a_failing_observer_does_not_break_the_call(
    fake: FakeRuStore, make_client: ClientFactory
) -> None:
    def broken(name: str, outcome: str, latency: float) -> None:
        raise RuntimeError("metrics backend down")

    client = make_client(observer=broken)
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))

    assert (await client.get_purchase(777)).invoice_id == 777


async def test_logs_carry_call_details_but_no_secrets(
    fake: FakeRuStore, client: RuStoreClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    fake.on("GET", PURCHASE_PATH, Reply(body=ok(payment())))
    await client.get_purchase(777)
    fake.expire_tokens()

    with capture_logs() as logs:
        await client.get_purchase(777)

    request_logs = [e for e in logs if e["event"] == "rustore.request"]
    assert {"rustore_method", "http_method", "path", "status", "latency_ms", "attempt"} <= set(
        request_logs[-1]
    )
    assert [e["status"] for e in request_logs] == [401, 200, 200]
    text = repr(logs)
    tokens = {r.headers["public-token"] for r in fake.seen("GET", PURCHASE_PATH)}
    signatures = {json.loads(r.body)["signature"] for r in fake.seen("POST", "/public/auth")}
    assert all(token not in text for token in tokens)
    assert all(signature[:40] not in text for signature in signatures)
    assert console_key(rsa_key)[:40] not in text
