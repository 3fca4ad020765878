"""Runs scenarios one after another on one stack, putting the stack back to its baseline after
each (whatever the scenario broke and did not mend), and collects the report rows."""

from __future__ import annotations

import signal
import time
import traceback
from pathlib import Path

from chaos.audit import Tally
from chaos.context import Context
from chaos.report import Row, passed
from chaos.scenarios import REGISTRY, Scenario, Verdict
from chaos.stack import ChaosStack, signal_group

BASELINE_WORKERS = 1


def run(
    numbers: list[int],
    *,
    full: bool,
    environ: dict[str, str],
    data_dir: Path | None = None,
) -> list[Row]:
    stack = ChaosStack(environ, data_dir) if data_dir else ChaosStack(environ)
    if stack.ignored:
        print(
            f"chaos: ignoring {' and '.join(stack.ignored)}: the harness kills and restarts its "
            "servers, so it runs its own embedded PostgreSQL and Redis",
            flush=True,
        )
    rows: list[Row] = []
    try:
        stack.up(workers=BASELINE_WORKERS)
        ctx = Context(stack, full=full)
        ctx.seed_catalogue()
        print(f"chaos: stack up (api {stack.api_url}, logs {stack.log_dir})", flush=True)
        for index, number in enumerate(numbers):
            rows.append(run_one(ctx, REGISTRY[number]))
            try:
                restore(ctx)
            except Exception as exc:  # the rest cannot run on a stack that will not come back
                traceback.print_exc()
                rows += [
                    _not_run(REGISTRY[n], f"stack not restored: {exc!r}")
                    for n in numbers[index + 1 :]
                ]
                break
    finally:
        stack.down()
    return rows


def run_one(ctx: Context, scenario: Scenario) -> Row:
    print(f"chaos: {scenario.number:>2} {scenario.title} …", flush=True)
    started = time.monotonic()
    try:
        verdict = scenario.check(ctx)
    except Exception as exc:  # a crashed check is a failed scenario, and the run goes on
        traceback.print_exc()
        verdict = Verdict(failures=[f"check crashed: {exc!r}"])
    row = Row(
        number=scenario.number,
        group=scenario.group,
        title=scenario.title,
        fault=scenario.fault,
        passed=passed(verdict.tally, verdict.failures),
        seconds=round(time.monotonic() - started, 1),
        tally=verdict.tally,
        failures=verdict.failures,
        details=verdict.details,
        skipped=verdict.skipped,
    )
    t = row.tally
    print(
        f"chaos: {scenario.number:>2} {'ok' if row.passed else 'FAILED'} in {row.seconds}s: "
        f"accepted {t.accepted} completed {t.completed} lost {t.lost} duplicated {t.duplicated} "
        f"unexpected {t.unexpected} retries {t.retries} redeliveries {t.redeliveries}"
        + "".join(f"\n        ! {failure}" for failure in row.failures),
        flush=True,
    )
    return row


def _not_run(scenario: Scenario, reason: str) -> Row:
    return Row(
        number=scenario.number,
        group=scenario.group,
        title=scenario.title,
        fault=scenario.fault,
        passed=False,
        seconds=0.0,
        tally=Tally(),
        failures=[reason],
    )


def restore(ctx: Context) -> None:
    """Lift every fault a scenario may have left: servers up, processes running and resumed,
    sandbox faults cleared, its clock true, the proxy passing, notifications off."""
    stack = ctx.stack
    if stack.redis.pid is None:
        stack.redis_start()
    else:
        stack.redis_freeze(False)
    assert stack.proxy is not None
    stack.proxy.set_mode("pass")
    for proc in list(stack.bench.procs.values()):
        if proc.popen.poll() is None:
            signal_group(proc, signal.SIGCONT)
        else:  # dead processes would make every later readiness wait fail
            stack.reap(proc, timeout=1)
    for role in ("web", "scheduler"):
        if stack.current[role] not in stack.bench.procs:
            stack.start(role)
    while len(stack.workers) < BASELINE_WORKERS:
        stack.start_worker()
    stack.bench.wait_http(f"{stack.api_url}/health/ready")
    ctx.clear_faults()
    stack.sandbox("POST", "/clock/skew", {"seconds": 0})
    stack.sandbox("PATCH", "/notifications", {"enabled": False})
