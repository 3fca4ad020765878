"""Scenario 1 and the floor: authenticated submits of unique purchases at fixed concurrency,
and the floor app taking the same bodies, measured back to back in the same run.

The worker is stopped: this is the api's accept path alone, and the queue simply fills (the
end-to-end scenario measures the pipeline behind it).
"""

from __future__ import annotations

import sys

from bench import seed
from bench.context import Context
from bench.scenarios import requests
from devstack.ports import free_port

CONCURRENCY = (32, 128)
USERS = 100


def accept_templates(ctx: Context) -> list[str]:
    """One submit template per user; every request is a new purchase under a new key."""
    user_ids = ctx.db(lambda sessions: seed.users(sessions, USERS))
    return [requests.verify(token) for token in seed.tokens(ctx.settings, user_ids)]


def run(ctx: Context) -> None:
    ctx.stack.stop("worker")
    templates = accept_templates(ctx)
    port = free_port()
    ctx.stack.start("floor", [sys.executable, "-m", "bench.floor"], FLOOR_PORT=str(port))
    ctx.stack.wait_http(f"http://127.0.0.1:{port}/health")
    try:
        for concurrency in CONCURRENCY:
            case = f"c={concurrency}"
            ctx.measure("floor", case, ctx.spec([requests.floor_accept()], concurrency, port))
            ctx.measure("accept", case, ctx.spec(templates, concurrency), worker="stopped")
    finally:
        ctx.stack.stop("floor")
