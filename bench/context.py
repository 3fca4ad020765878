"""What every scenario gets: the running stack, the bench database, run lengths, and `measure`,
which runs one load in its own process while sampling every server process's memory."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.load import LoadResult, LoadSpec, run_separately
from bench.seed import Database
from bench.stack import RUN_DIR, BenchStack, RssSampler, cpu_seconds
from core.settings import Settings, load_settings

T = TypeVar("T")
COUNTER_BLOCK = 10**9
"""Each load run numbers its requests from its own block, so ids never repeat within a run."""


class Row(msgspec.Struct, kw_only=True):
    """One measured case: the load figures, peak RSS per process (MB) and anything specific."""

    scenario: str
    case: str
    load: LoadResult | None = None
    rss_mb: dict[str, float] = msgspec.field(default_factory=dict)
    extra: dict[str, Any] = msgspec.field(default_factory=dict)


@dataclass
class Context:
    stack: BenchStack
    quick: bool
    rows: list[Row] = field(default_factory=list)
    _blocks: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def settings(self) -> Settings:
        return load_settings(self.stack.env)

    @property
    def duration(self) -> float:
        """Seconds of measured load per case (after the warm-up)."""
        return 3.0 if self.quick else 20.0

    @property
    def warmup(self) -> float:
        return 0.5 if self.quick else 2.0

    def db(self, job: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
        return asyncio.run(Database(self.settings).run(job))

    def spec(
        self, templates: list[str], concurrency: int, port: int | None = None, **options: Any
    ) -> LoadSpec:
        """A spec for the api (or `port`) with this run's length and a fresh counter block."""
        options.setdefault("duration", self.duration + self.warmup)
        options.setdefault("warmup", self.warmup)
        return LoadSpec(
            port=port or int(self.stack.env["PORT"]),
            templates=templates,
            concurrency=concurrency,
            counter_start=next(self._blocks) * COUNTER_BLOCK,
            **options,
        )

    def measure(self, scenario: str, case: str, spec: LoadSpec, **extra: Any) -> Row:
        """Run `spec` and record it with the peak memory of every process meanwhile."""
        procs = dict(self.stack.procs)
        cpu_before = cpu_seconds(procs)
        with RssSampler(self.stack.procs) as rss:
            result = self.measure_load(spec)
        self.stack.require_running()
        for name in ("web", "worker", "floor"):
            if name in procs and result.answered:
                used = procs[name].cpu_seconds() - cpu_before[name]
                extra[f"{name}_cpu_ms_per_request"] = round(1000 * used / result.answered, 2)
        return self.add(
            Row(scenario=scenario, case=case, load=result, rss_mb=rss.peaks, extra=extra)
        )

    def measure_load(self, spec: LoadSpec) -> LoadResult:
        return run_separately(spec, RUN_DIR)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        load = row.load
        figures = (
            f"{load.throughput:>8.1f}/s p50 {load.p50_ms} p95 {load.p95_ms} p99 {load.p99_ms} ms"
            f" errors {load.errors}"
            if load
            else ""
        )
        print(f"  {row.scenario:<14} {row.case:<28} {figures} {row.extra or ''}", flush=True)
        return row
