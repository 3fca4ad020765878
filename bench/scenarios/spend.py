"""Scenario 6: points spends under idempotency keys from many users, a fifth of them on one
user, whose ledger row every such spend locks in turn."""

from __future__ import annotations

from bench import seed
from bench.context import Context
from bench.load import render
from bench.scenarios.requests import COUNTER, json_post

CONCURRENCY = 32
HOT_SHARE = 0.2
BALANCE = 1_000_000_000  # nobody runs out: a 409 would measure the refusal, not the spend


def run(ctx: Context) -> None:
    users = 100 if ctx.quick else 1000
    user_ids = ctx.db(lambda sessions: seed.users(sessions, users))
    ctx.db(lambda sessions: seed.grants(sessions, user_ids, BALANCE))
    templates = [_spend(token) for token in seed.tokens(ctx.settings, user_ids)]
    hot = templates[0]
    templates += [hot] * round(users * HOT_SHARE / (1 - HOT_SHARE))
    case = f"c={CONCURRENCY} {users} users, {HOT_SHARE:.0%} on one"
    ctx.measure("spend", case, ctx.spec(templates, CONCURRENCY))


def _spend(token: str) -> str:
    headers = json_post(token, f"s{COUNTER}")
    return render("POST", "/api/points/spend", headers, b'{"amount":1,"reason":"bench"}')
