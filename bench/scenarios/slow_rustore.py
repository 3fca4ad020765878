"""Scenario 4: RuStore answering every call after 2 s must not slow the accept path.

Both cases run with the worker on, verifying what is accepted against the sandbox, so the only
difference between them is the sandbox's latency.
"""

from __future__ import annotations

from bench.context import Context
from bench.scenarios.accept import accept_templates

CONCURRENCY = 32
SLOW_MS = 2000


def run(ctx: Context) -> None:
    stack = ctx.stack
    templates = accept_templates(ctx)
    stack.flush_redis()
    stack.start_worker()
    try:
        for latency in (0, SLOW_MS):
            stack.sandbox("DELETE", "/faults")
            if latency:
                stack.sandbox("POST", "/faults", {"endpoint": "*", "latencyMs": latency})
            spec = ctx.spec(templates, CONCURRENCY)
            ctx.measure("slow_rustore", f"c={CONCURRENCY} rustore +{latency} ms", spec)
    finally:
        stack.sandbox("DELETE", "/faults")
        stack.stop("worker")
        stack.flush_redis()
