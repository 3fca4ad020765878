"""The soak run (`python -m chaos --soak`, `make chaos-soak`): thousands of purchases while a
worker is SIGKILLed every few seconds and Redis is restarted once; then the audit. 0 lost and 0
duplicated, or the run fails."""

from __future__ import annotations

import time

from chaos.audit import audit
from chaos.context import Context, accepted_ids, statuses
from chaos.report import Row, passed
from chaos.runner import BASELINE_WORKERS
from chaos.stack import ChaosStack

SOAK_PURCHASES = 10_000
SOAK_WORKERS = 2
KILL_EVERY_SECONDS = 4.0
KILLING_CAP = 1800.0
OPEN = "SELECT count(*) FROM purchases WHERE state IN ('pending', 'verifying', 'confirming')"
USERS = 500


def soak(environ: dict[str, str], purchases: int = SOAK_PURCHASES) -> Row:
    stack = ChaosStack(environ)
    try:
        stack.up(workers=max(SOAK_WORKERS, BASELINE_WORKERS))
        ctx = Context(stack, full=True)
        ctx.seed_catalogue()
        print(f"chaos soak: preparing {purchases} paid purchases", flush=True)
        paid = ctx.paid(ctx.users(min(USERS, purchases)), purchases)
        print("chaos soak: submitting, killing a worker every few seconds", flush=True)
        started = time.time()
        load = ctx.start_load(
            [p.verify() for p in paid], concurrency=16, deadline_seconds=3600, timeout_seconds=30
        )
        kills, redis_restarted_at = 0, None
        # Kill on while the load runs and while the workers still have open purchases to finish.
        while load.popen.poll() is None or (_open(ctx) and time.time() - started < KILLING_CAP):
            time.sleep(KILL_EVERY_SECONDS)
            stack.kill_worker()
            kills += 1
            stack.start_worker()
            if redis_restarted_at is None and time.time() - started > 20:
                stack.redis_stop()
                time.sleep(1)
                stack.redis_start()
                redis_restarted_at = round(time.time() - started, 1)
            print(f"chaos soak: {kills} workers killed", flush=True)
        answers = load.wait()
        healed = time.time()
        tally = audit(
            ctx,
            paid=paid,
            accepted=accepted_ids(answers).values(),
            heal_at=healed,
            within=max(300.0, purchases / 20),
        )
        finished = max(healed + (tally.recover_seconds or 0), healed)
        duration = finished - started
        tally.evidence |= {
            "purchases": purchases,
            "duration_s": round(duration, 1),
            "completed_per_s": round(tally.completed / duration, 1) if duration else 0,
            "workers_killed": kills,
            "redis_restarted_at_s": redis_restarted_at,
            "answers": statuses(answers),
        }
        failures = [] if tally.accepted == purchases else [f"{tally.accepted} accepted"]
        return Row(
            number=0,
            group="soak",
            title=f"soak: {purchases} purchases, worker killed every {KILL_EVERY_SECONDS:.0f}s",
            fault="SIGKILL worker + Redis restart",
            passed=passed(tally, failures),
            seconds=round(duration, 1),
            tally=tally,
            failures=failures,
        )
    finally:
        stack.down()


def _open(ctx: Context) -> int:
    return int(ctx.sql(OPEN)[0][0])
