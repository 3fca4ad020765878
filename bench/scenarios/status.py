"""Scenario 2: the app polling `GET /api/payments/{id}` with the ETag of its last answer, so
the steady state is a 304 (one indexed read, no body)."""

from __future__ import annotations

import uuid

import httpx

from bench import seed
from bench.context import Context
from bench.load import render
from bench.scenarios.requests import bearer

CONCURRENCY = 32
USERS = 100
PURCHASES = 10_000
POLLED = 500
INVOICE_BASE = 7_500_000_000_000


def run(ctx: Context) -> None:
    user_ids = ctx.db(lambda sessions: seed.users(sessions, USERS))
    ctx.db(lambda sessions: seed.bulk_purchases(sessions, user_ids, PURCHASES, INVOICE_BASE))
    tokens = dict(zip(user_ids, seed.tokens(ctx.settings, user_ids), strict=True))
    polled = ctx.db(lambda sessions: seed.sample_purchases(sessions, POLLED))
    templates = [_poll(ctx, tokens[user], purchase) for user, purchase in polled if user in tokens]
    ctx.measure("status", f"c={CONCURRENCY} If-None-Match", ctx.spec(templates, CONCURRENCY))


def _poll(ctx: Context, token: str, purchase_id: uuid.UUID) -> str:
    """The conditional GET an app sends after its first read of the purchase."""
    path = f"/api/payments/{purchase_id}"
    first = httpx.get(f"{ctx.stack.api_url}{path}", headers=bearer(token), timeout=10)
    first.raise_for_status()
    return render("GET", path, bearer(token, **{"If-None-Match": first.headers["etag"]}))
