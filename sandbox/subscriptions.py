"""Subscriptions: periods, renewals, dunning, cancellation, and how RuStore renders them.

Model (Pay SDK statuses and florencecat's periods, rustore-api.md §5.2, §5.3, §7.3):

* ACTIVE in TRIAL (free or reduced first period) or MAIN; at the end of the paid period the next
  charge is attempted.
* A failed charge moves to GRACE (still ACTIVE, access kept, retries every `retry` seconds); when
  grace runs out, to HOLD (status PAUSED, access revoked, retries go on); when hold runs out, to
  TERMINATED. A successful retry brings it back to ACTIVE/MAIN.
* The user turning auto-renew off keeps access until the paid period ends, then CLOSED.
* Test subscriptions close after `max_charges` charges (12 in RuStore's sandbox, §8).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from sandbox.clock import epoch_millis
from sandbox.envelope import ApiError, Json

SANDBOX_MAX_CHARGES = 12
MICROS_PER_KOPECK = 10_000


class SubStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    CLOSED = "CLOSED"
    TERMINATED = "TERMINATED"


class Period(StrEnum):
    TRIAL = "TRIAL"
    MAIN = "MAIN"
    GRACE = "GRACE"
    HOLD = "HOLD"


class SubEvent(StrEnum):
    """`subscription_event_type` values (florencecat, UNVERIFIED)."""

    ACTIVATED = "ACTIVATED"
    RENEWED = "RENEWED"
    CANCELLED = "CANCELLED"
    RESUMED = "RESUMED"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class Plan:
    """Prices in kopecks, durations in seconds."""

    price: int
    period: int
    trial: int
    trial_price: int
    grace: int
    hold: int
    retry: int
    max_charges: int | None


@dataclass
class Subscription:
    subscription_id: int
    invoice_id: int
    purchase_id: str
    app_id: int
    package_name: str
    product_code: str
    plan: Plan
    test: bool
    developer_payload: str | None
    user_id: int
    start_time: datetime
    paid_until: datetime
    period: Period
    charges: int
    status: SubStatus = SubStatus.ACTIVE
    auto_renewing: bool = True
    renewals: int = 0
    card_ok: bool = True
    next_retry: datetime | None = None
    acknowledged: bool = False
    cancel_reason: int | None = None
    refunded: bool = False
    ended_at: datetime | None = None

    @property
    def token(self) -> str:
        """Legacy subscriptionToken, "invoiceId.userId" (UNCERTAIN, §3b)."""
        return f"{self.invoice_id}.{self.user_id}"

    @property
    def order_id(self) -> str:
        """The latest charge: `<id>` at first, then `<id>..0`, `<id>..1` per renewal (§4.4)."""
        if self.renewals == 0:
            return str(self.invoice_id)
        return f"{self.invoice_id}..{self.renewals - 1}"

    @property
    def grace_end(self) -> datetime:
        return self.paid_until + timedelta(seconds=self.plan.grace)

    @property
    def hold_end(self) -> datetime:
        return self.grace_end + timedelta(seconds=self.plan.hold)

    @property
    def is_final(self) -> bool:
        return self.status in (SubStatus.CLOSED, SubStatus.TERMINATED)

    @property
    def has_access(self) -> bool:
        """Access is kept in trial, main and grace; revoked in hold and after the end."""
        return self.status is SubStatus.ACTIVE

    @property
    def expiry_time(self) -> datetime:
        """Like Google's: grace extends the expiry; in hold it lies in the past."""
        if self.is_final and self.ended_at is not None:
            return self.ended_at
        if self.period is Period.GRACE:
            return self.grace_end
        return self.paid_until

    @property
    def payment_state(self) -> int | None:
        """0 pending, 1 received, 2 free trial; absent once the subscription has ended."""
        if self.is_final:
            return None
        if self.period in (Period.GRACE, Period.HOLD):
            return 0
        if self.period is Period.TRIAL and self.plan.trial_price == 0:
            return 2
        return 1

    @property
    def max_charges(self) -> int | None:
        if self.plan.max_charges is not None:
            return self.plan.max_charges
        return SANDBOX_MAX_CHARGES if self.test else None


@dataclass(frozen=True)
class SubscriptionChanged:
    """The source of a SUBSCRIPTION_EVENT notification."""

    subscription: Subscription
    event: SubEvent
    status_old: str
    status_new: str
    period_old: str
    period_new: str
    at: datetime


class SubscriptionBook:
    """All subscriptions, with the transitions the control API and the clock drive."""

    def __init__(self, emit: Callable[[SubscriptionChanged], None]) -> None:
        self._emit = emit
        self.by_purchase_id: dict[str, Subscription] = {}

    def clear(self) -> None:
        self.by_purchase_id.clear()

    def find_token(self, token: str) -> Subscription | None:
        return next((s for s in self.by_purchase_id.values() if s.token == token), None)

    def find_invoice(self, invoice_id: int) -> Subscription | None:
        """The subscription whose first charge is `invoice_id` (what refund #5 is given)."""
        return next((s for s in self.by_purchase_id.values() if s.invoice_id == invoice_id), None)

    def find(self, ref: str) -> Subscription | None:
        """By purchaseId, initial invoiceId or subscriptionToken (for the control API)."""
        found = self.by_purchase_id.get(ref) or self.find_token(ref)
        if found is None and ref.isdigit():
            found = self.find_invoice(int(ref))
        return found

    def activate(self, sub: Subscription) -> None:
        self.by_purchase_id[sub.purchase_id] = sub
        self._emit(
            SubscriptionChanged(
                sub,
                SubEvent.ACTIVATED,
                "INVOICE_CREATED",
                sub.status,
                sub.period,
                sub.period,
                sub.start_time,
            )
        )

    def _change(
        self,
        sub: Subscription,
        event: SubEvent,
        at: datetime,
        status: SubStatus | None = None,
        period: Period | None = None,
    ) -> None:
        status_old, period_old = sub.status, sub.period
        sub.status = status or sub.status
        sub.period = period or sub.period
        self._emit(
            SubscriptionChanged(sub, event, status_old, sub.status, period_old, sub.period, at)
        )

    # --- what the user does -------------------------------------------------------------------

    def cancel(self, sub: Subscription, at: datetime) -> None:
        """Auto-renew off. Access stays until the paid period ends; an unpaid one closes now."""
        self._require_live(sub)
        if not sub.auto_renewing:
            raise ApiError.rejected("Auto-renewal is already off")
        sub.auto_renewing = False
        self._change(sub, SubEvent.CANCELLED, at)
        if sub.period in (Period.GRACE, Period.HOLD):
            self._close(sub, at, SubStatus.CLOSED, cancel_reason=0)

    def charge_now(self, sub: Subscription, at: datetime) -> None:
        """Run the next billing step now: end the paid period, or retry a failed charge."""
        self._require_live(sub)
        if sub.period in (Period.GRACE, Period.HOLD):
            sub.next_retry = at
        else:
            sub.paid_until = at
        self.advance(sub, at)

    # --- what the developer does through the Console ------------------------------------------

    def refund(self, sub: Subscription, at: datetime) -> None:
        """UNCERTAIN: the sandbox revokes a refunded subscription at once (cancelReason 1)."""
        if sub.refunded:
            raise ApiError.rejected("Invoice has already been refunded")
        if sub.charges == 0:
            raise ApiError.rejected("Invoice cannot be refunded")
        sub.refunded = True
        sub.auto_renewing = False
        self._close(sub, at, SubStatus.CLOSED, cancel_reason=1)

    # --- what the clock does ------------------------------------------------------------------

    def due(self) -> Iterator[tuple[datetime, Callable[[datetime], None]]]:
        for sub in self.by_purchase_id.values():
            moment = self._next_step(sub)
            if moment is not None:
                yield moment, partial(self.advance, sub)

    @staticmethod
    def _next_step(sub: Subscription) -> datetime | None:
        if sub.is_final:
            return None
        if sub.period is Period.GRACE:
            return min(sub.next_retry or sub.grace_end, sub.grace_end)
        if sub.period is Period.HOLD:
            return min(sub.next_retry or sub.hold_end, sub.hold_end)
        return sub.paid_until

    def advance(self, sub: Subscription, at: datetime) -> None:
        """Take the one billing step that is due at `at`."""
        if sub.period in (Period.TRIAL, Period.MAIN):
            self._period_end(sub, at)
        elif sub.next_retry is not None and sub.next_retry <= at and sub.card_ok:
            self._recover(sub, at)
        elif sub.period is Period.GRACE and at >= sub.grace_end:
            self._enter_hold(sub, at)
        elif sub.period is Period.HOLD and at >= sub.hold_end:
            self._close(sub, at, SubStatus.TERMINATED, cancel_reason=1)
        else:
            sub.next_retry = at + timedelta(seconds=sub.plan.retry)

    def _period_end(self, sub: Subscription, at: datetime) -> None:
        limit = sub.max_charges
        if not sub.auto_renewing:
            self._close(sub, at, SubStatus.CLOSED, cancel_reason=0)
        elif limit is not None and sub.charges >= limit:
            self._close(sub, at, SubStatus.CLOSED, cancel_reason=1)
        elif sub.card_ok:
            self._charge(sub)
            sub.paid_until += timedelta(seconds=sub.plan.period)
            self._change(sub, SubEvent.RENEWED, at, period=Period.MAIN)
        elif sub.plan.grace > 0:
            sub.next_retry = at + timedelta(seconds=sub.plan.retry)
            self._change(sub, SubEvent.PAYMENT_FAILED, at, period=Period.GRACE)
        else:
            self._enter_hold(sub, at)

    def _enter_hold(self, sub: Subscription, at: datetime) -> None:
        if sub.plan.hold == 0:
            self._close(sub, at, SubStatus.TERMINATED, cancel_reason=1)
            return
        sub.next_retry = at + timedelta(seconds=sub.plan.retry)
        self._change(sub, SubEvent.PAYMENT_FAILED, at, SubStatus.PAUSED, Period.HOLD)

    def _recover(self, sub: Subscription, at: datetime) -> None:
        """A retry succeeded. From grace the paid time runs on; from hold it restarts now."""
        from_hold = sub.period is Period.HOLD
        self._charge(sub)
        sub.next_retry = None
        start = at if from_hold else sub.paid_until
        sub.paid_until = start + timedelta(seconds=sub.plan.period)
        event = SubEvent.RESUMED if from_hold else SubEvent.RENEWED
        self._change(sub, event, at, SubStatus.ACTIVE, Period.MAIN)

    @staticmethod
    def _charge(sub: Subscription) -> None:
        sub.charges += 1
        sub.renewals += 1

    def _close(
        self, sub: Subscription, at: datetime, status: SubStatus, cancel_reason: int
    ) -> None:
        sub.auto_renewing = False
        sub.next_retry = None
        sub.cancel_reason = cancel_reason
        sub.ended_at = at
        self._change(sub, SubEvent.CLOSED, at, status=status)

    @staticmethod
    def _require_live(sub: Subscription) -> None:
        if sub.is_final:
            raise ApiError.rejected(f"Subscription is {sub.status}")


def _iso_duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    return f"P{days}D" if rest == 0 else f"PT{seconds}S"


def google_purchase(sub: Subscription, purchase_type: int) -> Json:
    """The Google-like SubscriptionPurchase of v2/v3 (bare) and v4 (enveloped), §4.4."""
    body: Json = {
        "startTimeMillis": epoch_millis(sub.start_time),
        "expiryTimeMillis": epoch_millis(sub.expiry_time),
        "autoRenewing": sub.auto_renewing,
        "priceCurrencyCode": "RUB",
        "priceAmountMicros": str(sub.plan.price * MICROS_PER_KOPECK),
        "countryCode": "RU",
    }
    if sub.payment_state is not None:
        body["paymentState"] = sub.payment_state
    if sub.cancel_reason is not None:
        body["cancelReason"] = sub.cancel_reason
    body |= {
        "orderId": sub.order_id,
        "acknowledgementState": int(sub.acknowledged),
        "kind": "androidpublisher#subscriptionPurchase",
        "purchaseType": purchase_type,
    }
    if sub.plan.trial > 0:
        body["introductoryPriceInfo"] = {
            "introductoryPriceCurrencyCode": "RUB",
            "introductoryPriceAmountMicros": str(sub.plan.trial_price * MICROS_PER_KOPECK),
            "introductoryPricePeriod": _iso_duration(sub.plan.trial),
            "introductoryPriceCycles": "1",
        }
    return body


def v4_purchase(sub: Subscription) -> Json:
    """v4 adds developerPayload ([DOC25]); whether it keeps `kind` is UNCERTAIN (kept)."""
    return google_purchase(sub, purchase_type=int(sub.test)) | {
        "developerPayload": sub.developer_payload
    }


_LEGACY_PERIOD = {Period.MAIN: "STANDARD", Period.GRACE: "GRACE", Period.HOLD: "HOLD"}


def _legacy_state(sub: Subscription) -> str:
    """§5.2 states. UNCERTAIN: grace and hold report ACTIVATED with currentPeriod GRACE/HOLD."""
    if sub.refunded:
        return "REFUNDED"
    if sub.status is SubStatus.TERMINATED:
        return "DECLINED"
    if sub.status is SubStatus.CLOSED:
        return "CLOSED"
    return "ACTIVATED"


def _legacy_period_name(sub: Subscription) -> str:
    if sub.period is Period.TRIAL:
        return "PROMO" if sub.plan.trial_price == 0 else "START"
    return _LEGACY_PERIOD[sub.period]


def _days(seconds: int) -> int:
    """Legacy periods count whole days; shorter sandbox periods round up to one day."""
    return max(1, -(-seconds // 86_400))


def legacy_subscription(sub: Subscription) -> Json:
    """#10: the SmartPay-style `{code, success, message, body: Subscription}` (§4.5)."""
    periods: list[Json] = []
    if sub.plan.trial > 0:
        periods.append(
            {
                "periodName": "PROMO" if sub.plan.trial_price == 0 else "START",
                "periodType": "DAY",
                "periodDuration": _days(sub.plan.trial),
                "periodPrice": sub.plan.trial_price,
                "nextPeriod": "STANDARD",
            }
        )
    periods.append(
        {
            "periodName": "STANDARD",
            "periodType": "DAY",
            "periodDuration": _days(sub.plan.period),
            "periodPrice": sub.plan.price,
            "nextPeriod": None,
        }
    )
    return {
        "code": 0,
        "success": True,
        "message": "",
        "body": {
            "serviceName": sub.package_name,
            "subscriptionId": sub.subscription_id,
            "addParameters": {},
            "productType": "SUBSCRIPTION",
            "productName": sub.product_code,
            "productCode": sub.product_code,
            "recurrent": sub.auto_renewing,
            "countOfDay": _days(sub.plan.period),
            "periodType": "DAY",
            "periodDuration": _days(sub.plan.period),
            "nextPaymentDate": None if sub.is_final else f"{sub.expiry_time:%Y-%m-%d}",
            "price": sub.plan.price,
            "currency": "RUB",
            "imageUrl": None,
            "state": _legacy_state(sub),
            "currentPeriod": _legacy_period_name(sub),
            "debtPaymentPeriod": sub.period if sub.period in (Period.GRACE, Period.HOLD) else None,
            "description": sub.product_code,
            "tariffId": sub.subscription_id,
            "periods": periods,
        },
    }
