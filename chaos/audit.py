"""The ledger audit run after every scenario, and the Jepsen-style diff of accepted against done.

- Every balance equals the sum of its ledger entries, equals the last entry's `balance_after`, and
  is never negative (the whole database, not only the scenario's users).
- Every purchase the api answered 202 for reached a final state within the recovery deadline;
  one that did not is **lost**.
- Each RuStore invoice has one purchase row and at most one credit; anything more is
  **duplicated**.
- A credit whose invoice RuStore does not report CONFIRMED, that no accepted request (or the
  scenario) expected, or that went to someone other than the user the intent was issued to, is
  **unexpected**.

The evidence that the recovery paths really ran comes from the worker's own log lines (one per
delivery of `purchase.verify`, with Dramatiq's retry count) and the purchases' `attempts`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from core.purchases.models import FINAL_STATES

if TYPE_CHECKING:
    from chaos.context import Context, Paid

FINAL = sorted(state.value for state in FINAL_STATES)
DELIVERY_EVENTS = frozenset({"purchase.verify.attempt", "purchase.verify.skipped"})
POLL_SECONDS = 0.5

PURCHASES = """
SELECT id::text, invoice_id, user_id, state, attempts, completed_at, failure_reason
  FROM purchases
 WHERE invoice_id = ANY(:invoices) OR id::text = ANY(:ids)
"""
CREDITS = """
SELECT source_id, count(*) FROM ledger_entries
 WHERE source = 'purchase' AND kind = 'credit' AND source_id = ANY(:ids)
 GROUP BY source_id
"""
LEDGER = """
SELECT a.user_id, a.balance, coalesce(sum(e.amount), 0),
       (SELECT balance_after FROM ledger_entries l WHERE l.user_id = a.user_id
         ORDER BY l.id DESC LIMIT 1)
  FROM points_accounts a LEFT JOIN ledger_entries e ON e.user_id = a.user_id
 GROUP BY a.user_id, a.balance
"""


class Tally(msgspec.Struct, kw_only=True):
    accepted: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    recover_seconds: float | None = None
    retries: int = 0
    """Deliveries Dramatiq made because an earlier one raised (its `retries` option above 0)."""
    redeliveries: int = 0
    """Deliveries beyond the first per purchase: retries, sweeper re-sends, crash redeliveries,
    duplicates — each one had to be deduplicated."""
    ledger_violations: int = 0
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)

    def add(self, other: Tally) -> Tally:
        """Two audits of one scenario (two sub-cases) as one line of the report."""
        recover = [s for s in (self.recover_seconds, other.recover_seconds) if s is not None]
        return Tally(
            accepted=self.accepted + other.accepted,
            completed=self.completed + other.completed,
            lost=self.lost + other.lost,
            duplicated=self.duplicated + other.duplicated,
            unexpected=self.unexpected + other.unexpected,
            recover_seconds=max(recover) if recover else None,
            retries=self.retries + other.retries,
            redeliveries=self.redeliveries + other.redeliveries,
            ledger_violations=max(self.ledger_violations, other.ledger_violations),
            evidence=_merge(self.evidence, other.evidence),
        )


def _merge(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Evidence of two audits: counts add up, tallies by name merge, anything else is listed."""
    merged = dict(first)
    for key, value in second.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, int) and isinstance(merged[key], int):
            merged[key] += value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = dict(Counter(merged[key]) + Counter(value))
        else:
            merged[key] = [merged[key], value]
    return merged


def audit(
    ctx: Context,
    *,
    paid: Iterable[Paid],
    accepted: Iterable[str] = (),
    credit: Iterable[int] | None = None,
    heal_at: float | None = None,
    within: float = 90.0,
) -> Tally:
    """Wait up to `within` seconds for every accepted purchase to be final, then diff.

    `paid` are the scenario's RuStore purchases; `accepted` the purchase ids answered 202;
    `credit` the invoices that must end credited once (default: those of accepted purchases
    that RuStore reports CONFIRMED); `heal_at` (epoch seconds) when the fault was lifted.
    """
    paid = list(paid)
    accepted_ids = set(accepted)
    owners = {p.invoice_id: p.user.id for p in paid}
    invoices = list(owners)
    awaited = set(credit) if credit is not None else set()
    deadline = time.monotonic() + within
    while True:
        rows = ctx.sql(PURCHASES, invoices=invoices, ids=list(accepted_ids))
        by_id = {row[0]: row for row in rows}
        open_ids = [i for i in accepted_ids if i not in by_id or by_id[i][3] not in FINAL]
        settled = {row[1] for row in rows if row[3] in FINAL}
        if (not open_ids and awaited <= settled) or time.monotonic() > deadline:
            break
        time.sleep(POLL_SECONDS)
    sandbox = {p["invoiceId"]: p["status"] for p in ctx.stack.sandbox("GET", "/purchases")}
    must_credit = (
        set(credit)
        if credit is not None
        else {
            by_id[i][1]
            for i in accepted_ids
            if i in by_id and sandbox.get(by_id[i][1]) == "CONFIRMED"
        }
    )
    credits = dict(ctx.sql(CREDITS, ids=list(by_id))) if by_id else {}
    credited = [row for row in rows if credits.get(row[0])]
    per_invoice = Counter(row[1] for row in rows)
    credited_invoices = Counter(row[1] for row in credited)

    tally = Tally(accepted=len(accepted_ids), completed=len(accepted_ids) - len(open_ids))
    tally.lost = len(open_ids) + len(must_credit - set(credited_invoices))
    tally.duplicated = sum(n - 1 for n in per_invoice.values() if n > 1) + sum(
        int(n) - 1 for n in credits.values() if n > 1
    )
    wrong = [
        row[0]
        for row in credited
        if sandbox.get(row[1]) not in ("CONFIRMED", "REFUNDED")
        or row[1] not in must_credit
        or (row[1] in owners and row[2] != owners[row[1]])
    ]
    tally.unexpected = len(wrong)
    completions = [row[5].timestamp() for row in rows if row[5] is not None]
    if heal_at is not None and completions:
        tally.recover_seconds = round(max(0.0, max(completions) - heal_at), 2)
    _count_deliveries(ctx, tally, by_id)
    tally.ledger_violations = ledger_violations(ctx)
    tally.evidence["states"] = dict(Counter(row[3] for row in rows))
    if open_ids:
        tally.evidence["lost_ids"] = sorted(open_ids)[:5]
    if wrong:
        tally.evidence["unexpected_ids"] = wrong[:5]
    return tally


def _count_deliveries(ctx: Context, tally: Tally, rows: dict[str, Any]) -> None:
    deliveries = [
        event
        for event in ctx.stack.events("worker")
        if event.get("event") in DELIVERY_EVENTS and event.get("purchase_id") in rows
    ]
    delivered = {event["purchase_id"] for event in deliveries}
    tally.retries = sum(1 for event in deliveries if int(event.get("retries") or 0) > 0)
    tally.redeliveries = len(deliveries) - len(delivered)
    tally.evidence["deliveries"] = len(deliveries)
    tally.evidence["attempts"] = sum(int(row[4]) for row in rows.values())


def ledger_violations(ctx: Context) -> int:
    """Accounts whose balance is negative or differs from their ledger's sum or last entry."""
    return sum(
        1
        for _user, balance, total, last in ctx.sql(LEDGER)
        if balance < 0 or balance != total or (last is not None and last != balance)
    )


def log_count(ctx: Context, prefix: str, event: str, **fields: Any) -> int:
    """How many log lines of the `prefix` processes name `event` (and carry `fields`)."""
    return sum(
        1
        for line in ctx.stack.events(prefix)
        if line.get("event") == event and all(line.get(k) == v for k, v in fields.items())
    )


def sweeper_resends(ctx: Context, since: float) -> int:
    """Purchases the scheduler's sweeps sent since `since` (epoch seconds), from its log lines."""
    total = 0
    for event in ctx.stack.events("scheduler"):
        if event.get("event") == "scheduler.resent" and event.get("job") == "purchase.verify":
            stamp = dt.datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
            if stamp.timestamp() >= since:
                total += int(event.get("count", 0))
    return total
