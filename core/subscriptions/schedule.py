"""When to ask RuStore about a subscription again.

RuStore charges and retries on its own; we only need to notice what it did. So a paid-up
subscription is looked at just before and just after its period ends (did it renew, or end?),
a failing one on a widening dunning backoff for a bounded number of checks, and an ended one
never again (a notification or the app's "renew" call can still trigger a check).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core.settings import Settings
from core.subscriptions.derivation import SubscriptionStatus

AROUND_PERIOD_END = dt.timedelta(minutes=10)
CLAIM_LEASE = dt.timedelta(minutes=10)
"""How long a claimed check is left to its job before the scheduler claims it again."""

PAID_UP = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED})
DUNNING = frozenset({SubscriptionStatus.GRACE, SubscriptionStatus.ON_HOLD})


@dataclass(frozen=True)
class CheckPolicy:
    dunning_seconds: tuple[int, ...]
    max_dunning_checks: int
    around_end: dt.timedelta = AROUND_PERIOD_END
    lease: dt.timedelta = CLAIM_LEASE

    @classmethod
    def from_settings(cls, settings: Settings) -> CheckPolicy:
        steps = tuple(int(step) for step in settings.dunning_schedule_seconds.split(","))
        return cls(steps, settings.dunning_max_checks)


@dataclass(frozen=True)
class NextCheck:
    at: dt.datetime | None
    dunning_checks: int
    """Dunning checks scheduled since the subscription last was paid up."""


def next_check(
    status: SubscriptionStatus,
    expires_at: dt.datetime,
    dunning_checks: int,
    now: dt.datetime,
    policy: CheckPolicy,
) -> NextCheck:
    if status in PAID_UP:
        before, after = expires_at - policy.around_end, expires_at + policy.around_end
        return NextCheck(before if before > now else after, 0)
    if status in DUNNING and dunning_checks < policy.max_dunning_checks:
        step = policy.dunning_seconds[min(dunning_checks, len(policy.dunning_seconds) - 1)]
        return NextCheck(now + dt.timedelta(seconds=step), dunning_checks + 1)
    return NextCheck(None, dunning_checks)
