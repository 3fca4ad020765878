"""`make bench-soak`: ten minutes of accepts with the worker on, one row a minute, so memory
growth of the api and the worker shows as a trend rather than a single peak."""

from __future__ import annotations

from bench.context import Context
from bench.scenarios.accept import accept_templates

CONCURRENCY = 32
MINUTES = 10


def run(ctx: Context) -> None:
    templates = accept_templates(ctx)
    ctx.stack.flush_redis()
    ctx.stack.start_worker()
    try:
        for minute in range(1, MINUTES + 1):
            spec = ctx.spec(templates, CONCURRENCY, duration=60.0, warmup=0.0)
            ctx.measure("soak", f"minute {minute}", spec)
    finally:
        ctx.stack.stop("worker")
