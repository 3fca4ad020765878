"""What a subscription is now, derived only from RuStore's Google-like object and the time.

A pure function, so the table in docs/subscriptions.md is the code and each row is one test:

| now vs expiry | paymentState | autoRenewing | status    | access |
|---------------|--------------|--------------|-----------|--------|
| before        | 0            | any          | grace     | yes    |
| before        | 1 or 2       | false        | cancelled | yes    |
| before        | 1 or 2       | true         | active    | yes    |
| at or after   | 0            | true         | on_hold   | no     |
| at or after   | other        | other        | expired   | no     |

`refunded` is ours, not RuStore's: once we refunded, nothing RuStore reports changes it.
The period is grace/hold in those states; otherwise trial (free: paymentState 2, or a free
introductory price still running), promo (a paid introductory price still running) or main.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from core.rustore import SubscriptionPurchase

PAYMENT_PENDING = 0
FREE_TRIAL = 2


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"  # a renewal charge is failing; RuStore retries, access is kept
    ON_HOLD = "on_hold"  # still failing after grace; RuStore retries, access is revoked
    CANCELLED = "cancelled"  # auto-renew off, paid up until the end date
    EXPIRED = "expired"
    REFUNDED = "refunded"  # we refunded it: sticky, access ended


class Period(StrEnum):
    TRIAL = "trial"
    PROMO = "promo"
    MAIN = "main"
    GRACE = "grace"
    HOLD = "hold"


WITH_ACCESS = frozenset(
    {SubscriptionStatus.ACTIVE, SubscriptionStatus.GRACE, SubscriptionStatus.CANCELLED}
)


@dataclass(frozen=True)
class Derived:
    status: SubscriptionStatus
    period: Period

    @property
    def has_access(self) -> bool:
        return self.status in WITH_ACCESS


def derive(purchase: SubscriptionPurchase, now: dt.datetime, *, refunded: bool = False) -> Derived:
    """The status, period and access RuStore's object means at `now` (see the module table)."""
    pending = purchase.payment_state == PAYMENT_PENDING
    if purchase.expiry_time > now:
        if pending:
            status, period = SubscriptionStatus.GRACE, Period.GRACE
        elif purchase.auto_renewing is False:
            status, period = SubscriptionStatus.CANCELLED, paid_period(purchase, now)
        else:
            status, period = SubscriptionStatus.ACTIVE, paid_period(purchase, now)
    elif pending and purchase.auto_renewing:
        status, period = SubscriptionStatus.ON_HOLD, Period.HOLD
    else:
        status, period = SubscriptionStatus.EXPIRED, paid_period(purchase, now)
    if refunded:
        status = SubscriptionStatus.REFUNDED
    return Derived(status, period)


def paid_period(purchase: SubscriptionPurchase, now: dt.datetime) -> Period:
    """Trial while free, promo while a paid introductory price runs, main afterwards."""
    if purchase.payment_state == FREE_TRIAL:
        return Period.TRIAL
    intro = purchase.introductory_price_info
    if intro is None or intro.introductory_price_period is None:
        return Period.MAIN
    length = iso_duration(intro.introductory_price_period)
    cycles = intro.introductory_price_cycles or 1
    if length is None or now >= purchase.start_time + length * cycles:
        return Period.MAIN
    return Period.TRIAL if intro.introductory_price_amount_micros == 0 else Period.PROMO


_DURATION = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_DAYS_PER = {"years": 365, "months": 30, "weeks": 7, "days": 1}
_SECONDS_PER = {"hours": 3600, "minutes": 60, "seconds": 1}


def iso_duration(text: str) -> dt.timedelta | None:
    """An ISO-8601 period (`P1M`, `P7D`, `PT600S`); None when unreadable.

    Months and years are taken as 30 and 365 days: the result only chooses the period label
    (trial/promo or main), never access, which follows RuStore's expiry alone.
    """
    match = _DURATION.match(text.strip().upper())
    if match is None or text.strip().upper() in ("P", "PT"):
        return None
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    days = sum(parts.get(name, 0) * per for name, per in _DAYS_PER.items())
    seconds = sum(parts.get(name, 0) * per for name, per in _SECONDS_PER.items())
    return dt.timedelta(days=days, seconds=seconds)


def order_sequence(order_id: str | None) -> int | None:
    """Which charge RuStore's `orderId` names: 0 for `<id>`, n + 1 for `<id>..n`; None unknown.

    Charges only ever increase, so an observation naming an earlier charge than the one we
    stored is older and must not overwrite it.
    """
    if not order_id:
        return None
    _, sep, renewal = order_id.partition("..")
    if not sep:
        return 0
    return int(renewal) + 1 if renewal.isdigit() else None
