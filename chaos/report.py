"""The table printed at the end of a run and the JSON report under chaos/results/ (with the
machine and the commit, as the benchmarks write theirs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from bench.report import commit, machine
from chaos.audit import Tally
from devstack import PROJECT_ROOT

RESULTS_DIR = PROJECT_ROOT / "chaos" / "results"


class Row(msgspec.Struct, kw_only=True):
    number: int
    group: str
    title: str
    fault: str
    passed: bool
    seconds: float
    tally: Tally
    failures: list[str] = msgspec.field(default_factory=list)
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    skipped: str | None = None

    @property
    def result(self) -> str:
        if self.skipped:
            return f"skipped ({self.skipped})"
        return "ok" if self.passed else "FAILED"


def passed(tally: Tally, failures: list[str]) -> bool:
    """No loss, no duplicate, nothing unexpected, the ledger sound, every assertion held."""
    bad = tally.lost or tally.duplicated or tally.unexpected or tally.ledger_violations
    return not bad and not failures


def table(rows: list[Row]) -> str:
    head = (
        f"{'#':>2} {'scenario':<44} {'acc':>5} {'done':>5} {'lost':>4} {'dup':>4} {'unex':>4}"
        f" {'recover s':>9} {'retries':>7} {'redeliv':>7} {'secs':>6}  result"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        t = row.tally
        recover = f"{t.recover_seconds:.1f}" if t.recover_seconds is not None else "-"
        lines.append(
            f"{row.number:>2} {row.title[:44]:<44} {t.accepted:>5} {t.completed:>5} {t.lost:>4}"
            f" {t.duplicated:>4} {t.unexpected:>4} {recover:>9} {t.retries:>7}"
            f" {t.redeliveries:>7} {row.seconds:>6.1f}  {row.result}"
        )
        lines += [f"   ! {failure}" for failure in row.failures]
        if t.ledger_violations:
            lines.append(f"   ! {t.ledger_violations} accounts break the ledger invariants")
    return "\n".join(lines)


def write(rows: list[Row], host: dict[str, Any], mode: str, out: Path = RESULTS_DIR) -> Path:
    print("\n" + table(rows) + "\n", flush=True)
    now = dt.datetime.now(dt.UTC)
    totals = {
        "scenarios": len(rows),
        "failed": [row.number for row in rows if not row.passed],
        "skipped": [row.number for row in rows if row.skipped],
        "lost": sum(row.tally.lost for row in rows),
        "duplicated": sum(row.tally.duplicated for row in rows),
        "unexpected": sum(row.tally.unexpected for row in rows),
    }
    document = {
        "date": now.isoformat(timespec="seconds"),
        "commit": commit(),
        "mode": mode,
        "machine": host,
        "totals": totals,
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"chaos-{now:%Y%m%d-%H%M%S}-{mode}.json"
    path.write_bytes(msgspec.json.format(msgspec.json.encode(document)))
    print(f"chaos: report in {path}", flush=True)
    return path


__all__ = ["Row", "machine", "passed", "table", "write"]
