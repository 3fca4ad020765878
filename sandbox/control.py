"""The control API: the other side of the counter (the paying user, the Pay SDK, the Console)
plus the test knobs (clock, faults, notifications, keys, reset). JSON in and out, no auth.

Purchases and subscriptions are addressed by `{ref}`: invoiceId, purchaseId or legacy token.
Errors use the RuStore envelope, like the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Router, delete, get, patch, post

from sandbox.clock import utc_time
from sandbox.envelope import ApiError, Json
from sandbox.faults import FaultBook, FaultRule
from sandbox.keys import KeyFormatError, load_public_key
from sandbox.notifications import Notifier, NotifySettings
from sandbox.purchases import Invoice, InvoiceStatus
from sandbox.state import RegisteredKey, Sandbox
from sandbox.subscriptions import Plan, Subscription

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
Seconds = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class Body(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """Control bodies: camelCase, unknown fields rejected so that typos fail loudly."""


class CreatePurchase(Body):
    product_code: NonEmpty
    amount: Positive
    two_stage: bool = False
    developer_payload: str | None = None
    order_id: str | None = None
    test: bool = False
    app_id: int | None = None
    user_id: int | None = None


class FailPurchase(Body):
    status: Literal["REJECTED", "EXPIRED", "CANCELLED"] = "REJECTED"


class CreateSubscription(Body):
    product_code: NonEmpty
    price: Annotated[int, msgspec.Meta(ge=0)]
    period_seconds: Positive = 30 * 86_400
    trial_seconds: Seconds = 0
    trial_price: Seconds = 0
    grace_seconds: Seconds = 3 * 86_400
    hold_seconds: Seconds = 30 * 86_400
    retry_seconds: Positive = 86_400
    max_charges: Positive | None = None
    developer_payload: str | None = None
    test: bool = False
    app_id: int | None = None
    package_name: str | None = None
    user_id: int | None = None


class FailRenewal(Body):
    immediately: bool = True


class AdvanceClock(Body):
    seconds: Annotated[float, msgspec.Meta(ge=0)]


class SkewClock(Body):
    seconds: float


class SendTestEvent(Body):
    test: bool = False


class RegisterKey(Body):
    key_id: NonEmpty
    public_key: NonEmpty
    enabled: bool = True


class NotifyUpdate(Body):
    """Partial update of the notification settings; omitted fields keep their value."""

    enabled: bool | None = None
    url: str | None = None
    key: str | None = None
    test_url: str | None = None
    test_key: str | None = None
    retry_seconds: list[Annotated[float, msgspec.Meta(ge=0)]] | None = None
    status_case: Literal["upper", "lower"] | None = None
    deliver_twice: bool | None = None
    shuffle: bool | None = None


def _time(moment: datetime | None) -> str | None:
    return utc_time(moment) if moment is not None else None


def purchase_view(invoice: Invoice) -> Json:
    return {
        "invoiceId": invoice.invoice_id,
        "purchaseId": invoice.purchase_id,
        "orderId": invoice.order_id,
        "purchaseToken": invoice.purchase_token,
        "appId": invoice.app_id,
        "productCode": invoice.product_code,
        "amount": invoice.amount,
        "twoStage": invoice.two_stage,
        "test": invoice.test,
        "developerPayload": invoice.developer_payload,
        "userId": invoice.user_id,
        "status": invoice.status,
        "createdAt": _time(invoice.created_at),
        "paidAt": _time(invoice.paid_at),
        "refundedAt": _time(invoice.refunded_at),
        "reversalDue": _time(invoice.reversal_due),
    }


def subscription_view(sub: Subscription) -> Json:
    return {
        "subscriptionId": sub.subscription_id,
        "purchaseId": sub.purchase_id,
        "invoiceId": sub.invoice_id,
        "subscriptionToken": sub.token,
        "orderId": sub.order_id,
        "appId": sub.app_id,
        "packageName": sub.package_name,
        "productCode": sub.product_code,
        "price": sub.plan.price,
        "test": sub.test,
        "developerPayload": sub.developer_payload,
        "userId": sub.user_id,
        "status": sub.status,
        "period": sub.period,
        "autoRenewing": sub.auto_renewing,
        "hasAccess": sub.has_access,
        "paymentState": sub.payment_state,
        "cancelReason": sub.cancel_reason,
        "acknowledged": sub.acknowledged,
        "refunded": sub.refunded,
        "charges": sub.charges,
        "cardOk": sub.card_ok,
        "startTime": _time(sub.start_time),
        "expiryTime": _time(sub.expiry_time),
        "nextRetry": _time(sub.next_retry),
    }


def _clock_view(sandbox: Sandbox) -> Json:
    return {"now": utc_time(sandbox.clock.now()), "offsetSeconds": sandbox.clock.offset_seconds}


def _invoice(sandbox: Sandbox, ref: str) -> Invoice:
    invoice = sandbox.invoices.find(ref)
    if invoice is None:
        raise ApiError.not_found()
    return invoice


def _subscription(sandbox: Sandbox, ref: str) -> Subscription:
    sub = sandbox.subscriptions.find(ref)
    if sub is None:
        raise ApiError.not_found("Subscription not found")
    return sub


# --- housekeeping ---------------------------------------------------------------------------------


@get("/health")
async def health(sandbox: Sandbox) -> Json:
    return {"status": "ok", "appId": sandbox.config.app_id, **_clock_view(sandbox)}


@post("/reset", status_code=200)
async def reset(sandbox: Sandbox, notifier: Notifier, faults: FaultBook) -> Json:
    """Everything back to the start, except id counters and issued tokens."""
    sandbox.reset()
    notifier.reset()
    faults.clear()
    return {"status": "ok"}


@get("/clock")
async def clock(sandbox: Sandbox) -> Json:
    return _clock_view(sandbox)


@post("/clock/advance", status_code=200)
async def advance_clock(data: AdvanceClock, sandbox: Sandbox) -> Json:
    """Move time forward and run whatever fell due: reversals, renewals, grace and hold."""
    sandbox.advance_clock(data.seconds)
    return _clock_view(sandbox)


@post("/clock/skew", status_code=200)
async def skew_clock(data: SkewClock, sandbox: Sandbox) -> Json:
    """Set the offset from real time, back or forth, without running anything that fell due:
    RuStore's clock and ours disagree (auth refuses timestamps more than 60 s off)."""
    sandbox.clock.skew(data.seconds)
    return _clock_view(sandbox)


@post("/keys", status_code=200)
async def register_key(data: RegisterKey, sandbox: Sandbox) -> Json:
    """Register, replace or disable (enabled=false) a company key."""
    try:
        public_key = load_public_key(data.public_key)
    except KeyFormatError as exc:
        raise ApiError.bad_request(str(exc)) from exc
    sandbox.keys[data.key_id] = RegisteredKey(public_key, data.enabled)
    return {"keyId": data.key_id, "enabled": data.enabled}


# --- purchases ------------------------------------------------------------------------------------


@post("/purchases", status_code=200)
async def create_purchase(data: CreatePurchase, sandbox: Sandbox) -> Json:
    """The app starts a payment: a new invoice in CREATED."""
    invoice = sandbox.create_invoice(
        product_code=data.product_code,
        amount=data.amount,
        two_stage=data.two_stage,
        test=data.test,
        developer_payload=data.developer_payload,
        order_id=data.order_id,
        app_id=data.app_id,
        user_id=data.user_id,
    )
    return purchase_view(invoice)


@get("/purchases")
async def list_purchases(sandbox: Sandbox) -> list[Json]:
    """Every invoice, for an audit that compares RuStore's view with the ledger."""
    return [purchase_view(invoice) for invoice in sandbox.invoices.by_id.values()]


@get("/purchases/{ref:str}")
async def get_purchase(ref: str, sandbox: Sandbox) -> Json:
    return purchase_view(_invoice(sandbox, ref))


@post("/purchases/{ref:str}/{action:str}", status_code=200)
async def purchase_action(
    ref: str, action: str, sandbox: Sandbox, data: FailPurchase | None = None
) -> Json:
    """pay, fail (body: status), confirm and cancel (the SDK's), refund (the Console's)."""
    invoice = _invoice(sandbox, ref)
    book, now = sandbox.invoices, sandbox.clock.now()
    actions: dict[str, Callable[[], None]] = {
        "pay": lambda: book.pay(invoice, now),
        "fail": lambda: book.fail(invoice, InvoiceStatus((data or FailPurchase()).status), now),
        "confirm": lambda: book.confirm(invoice, now),
        "cancel": lambda: book.reverse(invoice, now),
        "refund": lambda: book.refund(invoice, now),
    }
    _run(actions, action)
    return purchase_view(invoice)


# --- subscriptions --------------------------------------------------------------------------------


@post("/subscriptions", status_code=200)
async def create_subscription(data: CreateSubscription, sandbox: Sandbox) -> Json:
    """The user buys a subscription: the trial starts, or the first period is paid."""
    plan = Plan(
        price=data.price,
        period=data.period_seconds,
        trial=data.trial_seconds,
        trial_price=data.trial_price,
        grace=data.grace_seconds,
        hold=data.hold_seconds,
        retry=data.retry_seconds,
        max_charges=data.max_charges,
    )
    sub = sandbox.create_subscription(
        product_code=data.product_code,
        plan=plan,
        test=data.test,
        developer_payload=data.developer_payload,
        app_id=data.app_id,
        package_name=data.package_name,
        user_id=data.user_id,
    )
    return subscription_view(sub)


@get("/subscriptions/{ref:str}")
async def get_subscription(ref: str, sandbox: Sandbox) -> Json:
    return subscription_view(_subscription(sandbox, ref))


@post("/subscriptions/{ref:str}/{action:str}", status_code=200)
async def subscription_action(
    ref: str, action: str, sandbox: Sandbox, data: FailRenewal | None = None
) -> Json:
    """renew, fail-renewal (body: immediately), recover, cancel (auto-renew off), refund."""
    sub = _subscription(sandbox, ref)
    book, now = sandbox.subscriptions, sandbox.clock.now()

    def fail_renewal() -> None:
        sub.card_ok = False
        if (data or FailRenewal()).immediately:
            book.charge_now(sub, now)

    def recover() -> None:
        sub.card_ok = True
        if sub.next_retry is not None:
            book.charge_now(sub, now)

    actions: dict[str, Callable[[], None]] = {
        "renew": lambda: book.charge_now(sub, now),
        "fail-renewal": fail_renewal,
        "recover": recover,
        "cancel": lambda: book.cancel(sub, now),
        "refund": lambda: book.refund(sub, now),
    }
    _run(actions, action)
    return subscription_view(sub)


def _run(actions: dict[str, Callable[[], None]], action: str) -> None:
    run = actions.get(action)
    if run is None:
        raise ApiError.not_found(f"Unknown action {action!r}; one of {sorted(actions)}")
    run()


# --- notifications --------------------------------------------------------------------------------


def _settings_view(settings: NotifySettings) -> Json:
    """The settings without the keys themselves: only whether each one is set."""
    view: dict[str, Any] = msgspec.to_builtins(settings)
    view["key"] = bool(settings.key)
    view["testKey"] = bool(settings.test_key)
    return view


@get("/notifications")
async def notifications(notifier: Notifier) -> Json:
    return {
        "settings": _settings_view(notifier.settings),
        "pending": notifier.pending,
        "deliveries": [delivery.to_json() for delivery in notifier.deliveries],
    }


@patch("/notifications")
async def configure_notifications(data: NotifyUpdate, notifier: Notifier) -> Json:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
    notifier.settings = msgspec.structs.replace(notifier.settings, **changes)
    return _settings_view(notifier.settings)


@post("/notifications/test", status_code=200)
async def send_test_event(data: SendTestEvent, sandbox: Sandbox, notifier: Notifier) -> Json:
    """The Console's "send a test notification" button: TEST_EVENT(_SANDBOX), no retries."""
    notification_id = notifier.send(
        "TEST_EVENT",
        {"test": "TEST"},
        test=data.test,
        app_id=sandbox.config.app_id,
        at=sandbox.clock.now(),
        retry=False,
    )
    return {"id": notification_id}


# --- faults ---------------------------------------------------------------------------------------


@get("/faults")
async def list_faults(faults: FaultBook) -> list[FaultRule]:
    return faults.rules


@post("/faults", status_code=200)
async def add_fault(data: FaultRule, faults: FaultBook) -> FaultRule:
    return faults.add(data)


@delete("/faults/{rule_id:int}", status_code=200)
async def remove_fault(rule_id: int, faults: FaultBook) -> Json:
    """End one fault while the others (call counters, say) go on."""
    if not faults.remove(rule_id):
        raise ApiError.not_found("Fault rule not found")
    return {"id": rule_id}


@delete("/faults", status_code=200)
async def clear_faults(faults: FaultBook) -> Json:
    faults.clear()
    return {"status": "ok"}


control_router = Router(
    "/control",
    route_handlers=[
        health,
        reset,
        clock,
        advance_clock,
        skew_clock,
        register_key,
        create_purchase,
        list_purchases,
        get_purchase,
        purchase_action,
        create_subscription,
        get_subscription,
        subscription_action,
        notifications,
        configure_notifications,
        send_test_event,
        list_faults,
        add_fault,
        remove_fault,
        clear_faults,
    ],
    opt={"no_faults": True},
)
