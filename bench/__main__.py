"""`python -m bench [--quick] [--scenario NAME ...] [--profile] [--soak]`: start the whole stack,
run the scenarios against it from a separate load-generator process, print a table and write
bench/results/bench-<date>.json. `make bench`, `make bench-quick` and `make bench-soak` call it."""

from __future__ import annotations

import argparse
import os
import traceback
from typing import Any

from bench import report, seed
from bench.context import Context, Row
from bench.scenarios import SCENARIOS, SOAK, Scenario, profiles
from bench.stack import RUN_DIR, BenchStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a few seconds per case (CI)")
    parser.add_argument(
        "--scenario", action="append", choices=[*SCENARIOS, *SOAK], help="repeatable; default all"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the api and the worker")
    parser.add_argument("--soak", action="store_true", help="only the 10-minute memory soak")
    args = parser.parse_args()
    chosen = ["soak"] if args.soak else args.scenario or list(SCENARIOS)
    host = report.machine()  # before the stack starts: the load average of the machine itself
    stack = BenchStack(dict(os.environ))
    try:
        stack.up()
        context = Context(stack, quick=args.quick)
        context.db(seed.catalogue)
        failed = [name for name in chosen if not _run(context, name)]
        profiled: dict[str, Any] = {}
        if args.profile and not _run(
            context, "profile", lambda c: profiled.update(profiles.run(c))
        ):
            failed.append("profile")
    finally:
        stack.down()
    report.write(context.rows, profiled, host, args.quick)
    if failed:
        raise SystemExit(f"bench: failed: {', '.join(failed)} (logs: {RUN_DIR})")


def _run(context: Context, name: str, scenario: Scenario | None = None) -> bool:
    """Run one scenario; a failure is reported and the others still run (and CI fails)."""
    print(f"bench: {name}", flush=True)
    try:
        (scenario or {**SCENARIOS, **SOAK}[name])(context)
    except Exception:
        traceback.print_exc()
        context.add(Row(scenario=name, case="FAILED", extra={"error": traceback.format_exc(0)}))
        return False
    return True


if __name__ == "__main__":
    main()
