"""The scheduler (scenario 24): two at once, one SIGKILLed mid-run."""

from __future__ import annotations

import datetime as dt
import signal
import time

from chaos.audit import audit, sweeper_resends
from chaos.context import Context, accepted_ids
from chaos.scenarios.registry import Verdict, scenario
from chaos.stack import signal_group
from core.purchases.reconciliation import previous_day


@scenario(
    24,
    "scheduler",
    "Two schedulers at once, one killed mid-run",
    "2nd scheduler + SIGKILL",
    ci=True,
)
def two_schedulers(ctx: Context) -> Verdict:
    """Purchases accepted while Redis is down wait for the sweep; two schedulers sweep at once
    (row claims, FOR UPDATE SKIP LOCKED), and the first is SIGKILLed while they do: every
    purchase is sent exactly once in all, and the daily reconciliation slot is claimed once."""
    count = ctx.scale(30, 100)
    users = ctx.users(5)
    paid = ctx.paid(users, count)
    stack = ctx.stack
    since = time.time()
    second = stack.start_extra("scheduler")
    stack.redis_stop()
    answers = ctx.submit([p.verify() for p in paid])
    stack.redis_start()
    time.sleep(1.0)
    stack.restart("scheduler")  # SIGKILL while both sweep; the replacement catches up at once
    healed = time.time()
    verdict = Verdict()
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=healed)
    sent = sweeper_resends(ctx, since)
    tally.evidence["sent_by_sweeps"] = sent
    verdict.expect(sent >= count, f"the sweeps sent {sent} messages for {count} purchases")
    delivered = tally.evidence["deliveries"]
    verdict.expect(delivered == count, f"{count} purchases were delivered {delivered} times")
    slot = previous_day(dt.datetime.now(dt.UTC)).isoformat()
    claims = ctx.sql(
        "SELECT count(*) FROM scheduled_runs WHERE job = 'purchases.reconcile' AND slot = :s",
        s=slot,
    )[0][0]
    verdict.expect(claims == 1, f"reconciliation slot {slot} claimed {claims} times")
    signal_group(second, signal.SIGTERM)
    second.popen.wait(20)
    stack.bench.procs.pop(second.name, None)
    return verdict.audited(tally)
