"""`python -m chaos [--subset ci|full] [--scenario N ...] [--soak [--purchases N]]`: start the
stack on embedded servers of its own, run the scenarios against it, print the table, write
chaos/results/chaos-<date>-<mode>.json, and exit non-zero on any loss, duplicate or failed check.
`make chaos` and `make chaos-soak` call it."""

from __future__ import annotations

import argparse
import os

from chaos import report, runner
from chaos.scenarios import REGISTRY
from chaos.soak import SOAK_PURCHASES, soak


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument(
        "--subset",
        choices=["ci", "full"],
        default="full",
        help="ci: the bounded subset `make test` runs, shortened; full: all 30 at full length",
    )
    parser.add_argument(
        "--scenario", type=int, action="append", choices=sorted(REGISTRY), help="repeatable"
    )
    parser.add_argument("--soak", action="store_true", help="only the soak run")
    parser.add_argument("--purchases", type=int, default=SOAK_PURCHASES, help="soak size")
    args = parser.parse_args()
    host = report.machine()
    environ = dict(os.environ)
    if args.soak:
        rows = [soak(environ, purchases=args.purchases)]
        mode = "soak"
    else:
        full = args.subset == "full"
        numbers = args.scenario or sorted(n for n, s in REGISTRY.items() if full or s.ci)
        rows = runner.run(numbers, full=full, environ=environ)
        mode = args.subset
    report.write(rows, host, mode)
    failed = [row.number for row in rows if not row.passed]
    if failed:
        raise SystemExit(f"chaos: failed: {', '.join(map(str, failed))}")


if __name__ == "__main__":
    main()
