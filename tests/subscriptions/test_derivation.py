"""The derivation table and the check schedule, as pure functions: one test per row."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from core.rustore import SubscriptionPurchase
from core.rustore.models import IntroductoryPriceInfo
from core.subscriptions.derivation import (
    Period,
    SubscriptionStatus,
    derive,
    iso_duration,
    order_sequence,
)
from core.subscriptions.schedule import CheckPolicy, next_check

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def observed(
    expiry: dt.datetime,
    *,
    payment_state: int | None = 1,
    auto_renewing: bool = True,
    start: dt.datetime = NOW - 30 * 24 * HOUR,
    intro: dict[str, Any] | None = None,
) -> SubscriptionPurchase:
    return SubscriptionPurchase(
        start_time_millis=int(start.timestamp() * 1000),
        expiry_time_millis=int(expiry.timestamp() * 1000),
        auto_renewing=auto_renewing,
        payment_state=payment_state,
        introductory_price_info=None if intro is None else _intro(**intro),
    )


def _intro(period: str, micros: int) -> IntroductoryPriceInfo:
    return IntroductoryPriceInfo(
        introductory_price_period=period,
        introductory_price_amount_micros=micros,
        introductory_price_cycles=1,
    )


@pytest.mark.parametrize(
    ("purchase", "status", "period", "access"),
    [
        (observed(NOW + HOUR, payment_state=0), "grace", "grace", True),
        (observed(NOW + HOUR, payment_state=0, auto_renewing=False), "grace", "grace", True),
        (observed(NOW + HOUR, auto_renewing=False), "cancelled", "main", True),
        (observed(NOW + HOUR), "active", "main", True),
        (observed(NOW + HOUR, payment_state=2), "active", "trial", True),
        (observed(NOW, payment_state=0), "on_hold", "hold", False),
        (observed(NOW - HOUR, payment_state=0), "on_hold", "hold", False),
        (observed(NOW - HOUR, payment_state=0, auto_renewing=False), "expired", "main", False),
        (observed(NOW - HOUR, payment_state=None, auto_renewing=False), "expired", "main", False),
        (observed(NOW - HOUR), "expired", "main", False),
    ],
    ids=[
        "before-pending-grace",
        "before-pending-not-renewing-grace",
        "before-not-renewing-cancelled",
        "before-renewing-active",
        "before-free-trial",
        "at-expiry-pending-renewing-hold",
        "after-pending-renewing-hold",
        "after-pending-not-renewing-expired",
        "after-closed-expired",
        "after-paid-renewing-expired",
    ],
)
def test_derivation_table(
    purchase: SubscriptionPurchase, status: str, period: str, access: bool
) -> None:
    derived = derive(purchase, NOW)

    assert (derived.status.value, derived.period.value, derived.has_access) == (
        status,
        period,
        access,
    )


@pytest.mark.parametrize("expiry", [NOW + HOUR, NOW - HOUR])
def test_refunded_is_sticky_whatever_rustore_reports(expiry: dt.datetime) -> None:
    derived = derive(observed(expiry), NOW, refunded=True)

    assert derived.status is SubscriptionStatus.REFUNDED
    assert not derived.has_access


@pytest.mark.parametrize(
    ("start", "micros", "period"),
    [
        (NOW - HOUR, 0, Period.TRIAL),  # free introductory period still running
        (NOW - HOUR, 9_900_000, Period.PROMO),  # paid introductory price still running
        (NOW - 8 * 24 * HOUR, 9_900_000, Period.MAIN),  # the P7D introductory period is over
    ],
)
def test_introductory_price_decides_the_paid_period(
    start: dt.datetime, micros: int, period: Period
) -> None:
    purchase = observed(NOW + HOUR, start=start, intro={"period": "P7D", "micros": micros})

    assert derive(purchase, NOW).period is period


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", dt.timedelta(days=7)),
        ("PT600S", dt.timedelta(seconds=600)),
        ("P1M", dt.timedelta(days=30)),
        ("P1Y2W", dt.timedelta(days=379)),
        ("P1DT2H30M", dt.timedelta(days=1, hours=2, minutes=30)),
        ("P", None),
        ("7 days", None),
    ],
)
def test_iso_duration(text: str, expected: dt.timedelta | None) -> None:
    assert iso_duration(text) == expected


@pytest.mark.parametrize(
    ("order_id", "sequence"),
    [("33252", 0), ("33252..0", 1), ("33252..11", 12), (None, None), ("x..y", None)],
)
def test_order_sequence_counts_charges(order_id: str | None, sequence: int | None) -> None:
    assert order_sequence(order_id) == sequence


POLICY = CheckPolicy(dunning_seconds=(60, 600, 3600), max_dunning_checks=4)
END = NOW + 24 * HOUR


@pytest.mark.parametrize("status", [SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED])
def test_paid_up_is_checked_before_then_after_the_period_end(status: SubscriptionStatus) -> None:
    assert next_check(status, END, 3, NOW, POLICY).at == END - POLICY.around_end
    late = END - dt.timedelta(minutes=5)
    assert next_check(status, END, 0, late, POLICY).at == END + POLICY.around_end
    assert next_check(status, END, 3, NOW, POLICY).dunning_checks == 0


@pytest.mark.parametrize("status", [SubscriptionStatus.GRACE, SubscriptionStatus.ON_HOLD])
def test_dunning_widens_then_stops_at_its_maximum(status: SubscriptionStatus) -> None:
    delays, count, now = [], 0, NOW
    while (upcoming := next_check(status, END, count, now, POLICY)).at is not None:
        delays.append((upcoming.at - now).total_seconds())
        count, now = upcoming.dunning_checks, upcoming.at

    assert delays == [60, 600, 3600, 3600]
    assert count == POLICY.max_dunning_checks


@pytest.mark.parametrize("status", [SubscriptionStatus.EXPIRED, SubscriptionStatus.REFUNDED])
def test_ended_subscriptions_are_not_checked_again(status: SubscriptionStatus) -> None:
    assert next_check(status, NOW - HOUR, 2, NOW, POLICY).at is None
