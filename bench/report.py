"""The table printed at the end, the targets of issue #8 checked against it, and the JSON file
under bench/results/ with the machine, the commit and every figure."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import msgspec

from bench.context import Row
from bench.load import LoadResult
from devstack import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
QUERY_BUDGET_MS = 100.0
"""Our own budget for one claim of 500 rows or one read: issue #8 names none."""
DASHBOARD_BUDGET_MS = 300.0
"""Issue #7: every /ops page within 300 ms at scale."""


class Target(msgspec.Struct, frozen=True):
    name: str
    measured: float
    limit: float
    higher_is_better: bool

    @property
    def met(self) -> bool:
        return self.measured >= self.limit if self.higher_is_better else self.measured < self.limit

    @property
    def margin(self) -> str:
        """How far from the limit, as a percentage of it (negative: missed by that much)."""
        sign = 1 if self.higher_is_better else -1
        return f"{sign * (self.measured - self.limit) / self.limit:+.0%}"


def _load(rows: list[Row], scenario: str, case_prefix: str = "") -> LoadResult | None:
    """The load figures of the first row of `scenario` whose case starts with `case_prefix`."""
    for row in rows:
        if row.scenario == scenario and row.case.startswith(case_prefix) and row.load:
            return row.load
    return None


def targets(rows: list[Row]) -> list[Target]:
    """Every target of issue #8 whose figures this run measured."""
    found: list[Target] = []

    def check(name: str, measured: float | None, limit: float, higher: bool = False) -> None:
        if measured is not None:
            found.append(Target(name, round(measured, 2), limit, higher))

    for concurrency, p95 in ((32, 50.0), (128, 200.0)):
        case = f"c={concurrency}"
        accept, floor = _load(rows, "accept", case), _load(rows, "floor", case)
        if accept and floor:
            ratio = accept.throughput / floor.throughput
            check(f"accept/floor throughput, {case}", ratio, 0.6, higher=True)
        check(f"accept p95 ms, {case}", accept.p95_ms if accept else None, p95)
    e2e = [
        r.extra["completed_per_second"]
        for r in rows
        if r.scenario == "e2e" and r.case.endswith("+0 ms")
    ]
    check("e2e completed/s, instant sandbox", e2e[0] if e2e else None, 200.0, higher=True)
    fast = _load(rows, "slow_rustore", "c=32 rustore +0 ")
    slow = _load(rows, "slow_rustore", "c=32 rustore +2000")
    if fast and slow:
        check("accept p95, 2 s RuStore / instant", slow.p95_ms / fast.p95_ms, 1.2)
    hooks = _load(rows, "webhooks")
    check("webhook p99 ms at 500/s", hooks.p99_ms if hooks else None, 100.0)
    for scenario, case in (("status", ""), ("scale", "status read")):
        read = _load(rows, scenario, case)
        check(
            f"{scenario} {case or 'poll'} req/s",
            read.throughput if read else None,
            2000.0,
            higher=True,
        )
    for row in rows:
        if row.case.startswith("query: "):
            check(f"scale {row.case[7:]} ms", row.extra["median_ms"], QUERY_BUDGET_MS)
        if row.case.startswith("dashboard: "):
            check(f"scale {row.case} slowest ms", row.extra["max_ms"], DASHBOARD_BUDGET_MS)
    for process, limit in (("web", 150.0), ("worker", 250.0)):
        peaks = [r.rss_mb[process] for r in rows if process in r.rss_mb]
        check(f"{process} peak RSS MB (per process)", max(peaks, default=None), limit)
    return found


def table(rows: list[Row]) -> str:
    lines = [
        f"{'scenario':<13} {'case':<34} {'req/s':>8} {'p50':>7} {'p95':>7} {'p99':>7} "
        f"{'err':>5} {'web MB':>7} {'wrk MB':>7}  notes",
    ]
    for row in rows:
        load = row.load
        figures = (
            f"{load.throughput:>8.1f} {load.p50_ms:>7.1f} {load.p95_ms:>7.1f} "
            f"{load.p99_ms:>7.1f} {load.errors:>5}"
            if load
            else f"{'':>8} {'':>7} {'':>7} {'':>7} {'':>5}"
        )
        memory = f"{row.rss_mb.get('web', 0):>7.0f} {row.rss_mb.get('worker', 0):>7.0f}"
        notes = ", ".join(f"{k}={v}" for k, v in row.extra.items())
        lines.append(f"{row.scenario:<13} {row.case[:34]:<34} {figures} {memory}  {notes}")
    return "\n".join(lines)


def target_table(found: list[Target]) -> str:
    lines = [f"{'target':<44} {'measured':>10} {'limit':>10}  result"]
    for t in found:
        verdict = "met" if t.met else "MISSED"
        lines.append(f"{t.name:<44} {t.measured:>10} {t.limit:>10}  {verdict} ({t.margin})")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = "+uncommitted" if git("status", "--porcelain", "--untracked-files=no") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def write(rows: list[Row], profiles: dict[str, Any], host: dict[str, Any], quick: bool) -> Path:
    found = targets(rows)
    print("\n" + table(rows) + "\n\n" + target_table(found) + "\n", flush=True)
    now = dt.datetime.now(dt.UTC)
    document = {
        "date": now.isoformat(timespec="seconds"),
        "commit": commit(),
        "mode": "quick" if quick else "full",
        "machine": host,
        "rows": rows,
        "targets": [{**msgspec.to_builtins(t), "met": t.met, "margin": t.margin} for t in found],
        "profiles": profiles,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"bench-{now:%Y%m%d-%H%M%S}{'-quick' if quick else ''}.json"
    path.write_bytes(msgspec.json.format(msgspec.json.encode(document)))
    print(f"bench: results in {path.relative_to(PROJECT_ROOT)}", flush=True)
    return path
