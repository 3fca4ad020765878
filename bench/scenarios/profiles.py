"""`--profile`: the accept path under load, and the worker through an end-to-end batch, each
sampled by py-spy while it runs (see bench/profile.py)."""

from __future__ import annotations

import time
from typing import Any

from bench import profile
from bench.context import Context
from bench.scenarios import e2e
from bench.scenarios.accept import accept_templates

CONCURRENCY = 32


def run(ctx: Context) -> dict[str, Any]:
    if not profile.available():
        print("  profile: py-spy not installed (pip install -e '.[bench]'); skipped", flush=True)
        return {}
    return {"api_accept": _api(ctx), "worker_e2e": _worker(ctx)}


def _api(ctx: Context) -> dict[str, Any]:
    ctx.stack.stop("worker")
    spec = ctx.spec(accept_templates(ctx), CONCURRENCY, warmup=0.0)
    sampling = profile.start(ctx.stack.procs["web"], "api-accept", spec.duration or 0)
    ctx.measure("profile", f"accept c={CONCURRENCY} under py-spy", spec)
    return profile.finish(sampling)


def _worker(ctx: Context) -> dict[str, Any]:
    count = 100 if ctx.quick else 1000
    templates, invoice_ids = e2e.paid_purchases(ctx, count)
    ctx.stack.flush_redis()
    ctx.stack.start_worker()
    try:
        seconds = 10.0 if ctx.quick else 30.0
        sampling = profile.start(ctx.stack.procs["worker"], "worker-e2e", seconds, gil=True)
        started = time.monotonic()
        spec = ctx.spec(templates, CONCURRENCY, duration=None, warmup=0.0, total=count)
        ctx.measure("profile", f"{count} purchases e2e under py-spy", spec)
        ctx.db(lambda sessions: e2e.wait_final(sessions, invoice_ids, started + seconds))
        return profile.finish(sampling)
    finally:
        ctx.stack.stop("worker")
