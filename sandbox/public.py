"""RuStore's public payment endpoints (§3a #1-#7, legacy §3b #8-#14).

Each handler is registered twice, under `/public` and `/public/sandbox`, and told which through
the `test` dependency: test payments are visible only through the sandbox twins, production ones
only through the production paths. #2 (invoice list) and #13 (glike v2) have no sandbox twin in
the documentation and are registered under `/public` only.

Paths with `:confirm`, `:cancel` or `:acknowledge` after a parameter take the whole last segment
as one parameter and split it on ':' here, because the router matches whole segments only.
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated

from litestar import Response, get, patch, post, put
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from sandbox.clock import MSK
from sandbox.envelope import ApiError, Json, envelope
from sandbox.purchases import Invoice, InvoiceStatus, invoice_info, invoice_payment
from sandbox.state import Sandbox
from sandbox.subscriptions import Subscription, google_purchase, legacy_subscription, v4_purchase


def _split_action(segment: str, allowed: set[str]) -> tuple[str, str]:
    ident, sep, action = segment.rpartition(":")
    if not sep or action not in allowed or not ident:
        raise ApiError.not_found("Not found")
    return ident, action


def _check_app(sandbox: Sandbox, app_id: int) -> None:
    """The key may act on the configured app only (keys are scoped to apps, §1)."""
    if app_id != sandbox.config.app_id:
        raise ApiError.forbidden()


def _visible_invoice(sandbox: Sandbox, invoice: Invoice | None, test: bool) -> Invoice:
    if invoice is None or invoice.test != test:
        raise ApiError.not_found()
    _check_app(sandbox, invoice.app_id)
    return invoice


def _visible_subscription(
    sandbox: Sandbox, sub: Subscription | None, test: bool, package_name: str, product: str
) -> Subscription:
    if package_name != sandbox.config.package_name:
        raise ApiError.forbidden()
    if (
        sub is None
        or sub.test != test
        or (sub.package_name, sub.product_code)
        != (
            package_name,
            product,
        )
    ):
        raise ApiError.not_found()
    return sub


def _ok(sandbox: Sandbox, body: object) -> Json:
    return envelope(body, sandbox.clock.now())


# --- §3a, Pay SDK ---------------------------------------------------------------------------------


@get("/v2/purchase/{invoice_id:int}", opt={"endpoint": "v2_purchase"})
async def v2_purchase(invoice_id: int, sandbox: Sandbox, test: bool) -> Json:
    invoice = _visible_invoice(sandbox, sandbox.invoices.by_id.get(invoice_id), test)
    return _ok(sandbox, invoice_payment(invoice))


@get("/applications/{app_id:int}/invoices", opt={"endpoint": "invoice_list"})
async def invoice_list(
    app_id: int,
    sandbox: Sandbox,
    test: bool,
    invoice_statuses: Annotated[list[str], Parameter(query="invoiceStatuses")],
    invoice_date: Annotated[date, Parameter(query="invoiceDate")],
    page_number: Annotated[int, Parameter(query="pageNumber", ge=0)] = 0,
    page_size: Annotated[int, Parameter(query="pageSize", ge=1, le=1000)] = 20,
) -> Json:
    """Invoices created on one (Moscow) date, filtered by status, one page at a time (#2)."""
    _check_app(sandbox, app_id)
    try:
        wanted = {
            InvoiceStatus(part.strip().upper())
            for item in invoice_statuses
            for part in item.split(",")
            if part.strip()
        }
    except ValueError as exc:
        raise ApiError.bad_request() from exc
    matching = [
        invoice
        for invoice in sorted(sandbox.invoices.by_id.values(), key=lambda i: i.invoice_id)
        if invoice.app_id == app_id
        and invoice.test == test
        and invoice.status in wanted
        and invoice.created_at.astimezone(MSK).date() == invoice_date
    ]
    start = page_number * page_size
    return _ok(
        sandbox,
        {
            "content": [invoice_payment(i) for i in matching[start : start + page_size]],
            "pageNumber": page_number,
            "pageSize": page_size,
            "totalElements": len(matching),
            "totalPages": math.ceil(len(matching) / page_size),
        },
    )


@put("/applications/{app_id:int}/purchases/{segment:str}", opt={"endpoint": "purchase_action"})
async def purchase_action(app_id: int, segment: str, sandbox: Sandbox, test: bool) -> Json:
    """`{purchaseId}:confirm` (#3) and `{purchaseId}:cancel` (#4) of a two-stage purchase."""
    purchase_id, action = _split_action(segment, {"confirm", "cancel"})
    _check_app(sandbox, app_id)
    invoice = _visible_invoice(sandbox, sandbox.invoices.by_purchase_id.get(purchase_id), test)
    now = sandbox.clock.now()
    if action == "confirm":
        sandbox.invoices.confirm(invoice, now)
    else:
        sandbox.invoices.reverse(invoice, now)
    return _ok(sandbox, {})


@patch("/applications/{app_id:int}/invoices/{invoice_id:int}", opt={"endpoint": "refund"})
async def refund(app_id: int, invoice_id: int, sandbox: Sandbox, test: bool) -> Json:
    """Full refund of a confirmed invoice (#5); no body.

    UNCERTAIN: the docs do not say how a subscription is refunded through the API. Its first
    charge's invoice id is accepted here and refunds the subscription, as the Console does.
    """
    _check_app(sandbox, app_id)
    invoice = sandbox.invoices.by_id.get(invoice_id)
    sub = sandbox.subscriptions.find_invoice(invoice_id) if invoice is None else None
    if sub is not None and sub.test == test:
        _check_app(sandbox, sub.app_id)
        sandbox.subscriptions.refund(sub, sandbox.clock.now())
        return _ok(sandbox, {})
    invoice = _visible_invoice(sandbox, invoice, test)
    sandbox.invoices.refund(invoice, sandbox.clock.now())
    return _ok(sandbox, {})


@get(
    "/v4/subscription/{package_name:str}/{subscription_id:str}/{purchase_id:str}",
    opt={"endpoint": "v4_subscription"},
)
async def v4_subscription(
    package_name: str, subscription_id: str, purchase_id: str, sandbox: Sandbox, test: bool
) -> Json:
    sub = sandbox.subscriptions.by_purchase_id.get(purchase_id)
    sub = _visible_subscription(sandbox, sub, test, package_name, subscription_id)
    return _ok(sandbox, v4_purchase(sub))


@post(
    "/v2/subscription/{package_name:str}/{subscription_id:str}/{segment:str}",
    status_code=200,
    opt={"endpoint": "v2_acknowledge"},
)
async def v2_acknowledge(
    package_name: str, subscription_id: str, segment: str, sandbox: Sandbox, test: bool
) -> Json:
    """`{purchaseId}:acknowledge` (#7). The sandbox twin follows florencecat (UNCERTAIN)."""
    purchase_id, _ = _split_action(segment, {"acknowledge"})
    sub = sandbox.subscriptions.by_purchase_id.get(purchase_id)
    _visible_subscription(sandbox, sub, test, package_name, subscription_id).acknowledged = True
    return _ok(sandbox, None)


# --- §3b, legacy BillingClient -------------------------------------------------------------------


@get("/purchase/{purchase_token:str}", opt={"endpoint": "legacy_purchase"})
async def legacy_purchase(purchase_token: str, sandbox: Sandbox, test: bool) -> Json:
    invoice = _visible_invoice(sandbox, sandbox.invoices.find_token(purchase_token), test)
    return _ok(sandbox, invoice_info(invoice, sandbox.config.package_name))


@get("/purchase", opt={"endpoint": "legacy_purchase_by_invoice"})
async def legacy_purchase_by_invoice(
    sandbox: Sandbox, test: bool, invoice_id: Annotated[int, Parameter(query="invoiceId")]
) -> Json:
    invoice = _visible_invoice(sandbox, sandbox.invoices.by_id.get(invoice_id), test)
    return _ok(sandbox, invoice_info(invoice, sandbox.config.package_name))


def _legacy_subscription(sandbox: Sandbox, token: str, test: bool) -> Subscription:
    sub = sandbox.subscriptions.find_token(token)
    if sub is None or sub.test != test:
        raise ApiError.not_found()
    _check_app(sandbox, sub.app_id)
    return sub


@get("/subscription/{token:str}", opt={"endpoint": "legacy_subscription"})
async def legacy_subscription_info(token: str, sandbox: Sandbox, test: bool) -> Json:
    return _ok(sandbox, legacy_subscription(_legacy_subscription(sandbox, token, test)))


@get("/subscription/{token:str}/state", opt={"endpoint": "legacy_subscription_state"})
async def legacy_subscription_state(token: str, sandbox: Sandbox, test: bool) -> Json:
    sub = _legacy_subscription(sandbox, token, test)
    return _ok(sandbox, {"is_active": sub.has_access})


@get(
    "/v3/subscription/{package_name:str}/{subscription_id:str}/{token:str}",
    opt={"endpoint": "v3_subscription"},
)
async def v3_subscription(
    package_name: str, subscription_id: str, token: str, sandbox: Sandbox, test: bool
) -> Json:
    """Bare Google-like object (#12); purchaseType 1 for test subscriptions."""
    sub = sandbox.subscriptions.find_token(token)
    sub = _visible_subscription(sandbox, sub, test, package_name, subscription_id)
    return google_purchase(sub, purchase_type=int(sub.test))


@get(
    "/glike/subscription/{package_name:str}/{subscription_id:str}/{token:str}",
    opt={"endpoint": "glike_subscription"},
)
async def glike_subscription(
    package_name: str, subscription_id: str, token: str, sandbox: Sandbox, test: bool
) -> Json:
    """Bare Google-like object (#13), v2: purchaseType is always 0."""
    sub = sandbox.subscriptions.find_token(token)
    sub = _visible_subscription(sandbox, sub, test, package_name, subscription_id)
    return google_purchase(sub, purchase_type=0)


@post(
    "/glike/subscription/{package_name:str}/{subscription_id:str}/{segment:str}",
    status_code=200,
    opt={"endpoint": "glike_acknowledge"},
)
async def glike_acknowledge(
    package_name: str, subscription_id: str, segment: str, sandbox: Sandbox, test: bool
) -> Response[bytes]:
    """`{subscriptionToken}:acknowledge` (#14): HTTP 200 with an empty body."""
    token, _ = _split_action(segment, {"acknowledge"})
    sub = sandbox.subscriptions.find_token(token)
    _visible_subscription(sandbox, sub, test, package_name, subscription_id).acknowledged = True
    return Response(b"", status_code=200)


TWINNED: list[HTTPRouteHandler] = [
    v2_purchase,
    purchase_action,
    refund,
    v4_subscription,
    v2_acknowledge,
    legacy_purchase,
    legacy_purchase_by_invoice,
    legacy_subscription_info,
    legacy_subscription_state,
    v3_subscription,
    glike_acknowledge,
]
PRODUCTION_ONLY: list[HTTPRouteHandler] = [invoice_list, glike_subscription]
