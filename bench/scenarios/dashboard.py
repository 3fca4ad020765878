"""The /ops dashboard read as an operator's browser reads it: log in through the form (CSRF token
and session cookie), then open each page in turn and time it over HTTP.

Part of the scale scenario, so the pages are timed with the full table sizes behind them.
Sequential on purpose: the budget (300 ms a page) is about one operator's wait, not throughput.
"""

from __future__ import annotations

import re
import secrets
import statistics
import time
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.context import Context
from bench.report import DASHBOARD_BUDGET_MS
from core.accounts import service as accounts
from core.accounts.models import Role

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


def time_pages(ctx: Context, user: uuid.UUID, purchase: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Per page: median, p95 and slowest of a few reads, and whether all stay in budget."""
    email, password = f"ops-{secrets.token_hex(4)}@bench.example", secrets.token_urlsafe(16)
    ctx.db(lambda sessions: _create_admin(sessions, email, password))
    repeats = 5 if ctx.quick else 20
    with httpx.Client(base_url=ctx.stack.api_url, timeout=30) as client:
        cookie = _log_in(client, email, password)
        return {
            f"dashboard: {name}": _time(client, path, cookie, repeats)
            for name, path in _pages(user, purchase).items()
        }


def _pages(user: uuid.UUID, purchase: uuid.UUID) -> dict[str, str]:
    return {
        "overview": "/ops/",
        "overview refresh": "/ops/live/overview",
        "purchases by state": "/ops/purchases/?state=pending",
        "purchases of a user": f"/ops/purchases/?q={user}",
        "purchase timeline": f"/ops/purchases/{purchase}",
        "user card": f"/ops/users/{user}",
        "subscriptions": "/ops/subscriptions/",
        "dead letters": "/ops/dead-letters/",
        "notifications": "/ops/notifications/",
        "audit log": "/ops/audit/",
    }


async def _create_admin(
    sessions: async_sessionmaker[AsyncSession], email: str, password: str
) -> None:
    async with sessions() as session:
        await accounts.create_user(session, email, password, [Role.ADMIN])
        await session.commit()


def _log_in(client: httpx.Client, email: str, password: str) -> str:
    """The Cookie header of a logged-in browser. Cookies are carried by hand: they are `Secure`,
    which a browser honours over http on 127.0.0.1 and httpx's jar does not."""
    form = client.get("/ops/login")
    token = CSRF_INPUT.search(form.text)
    assert token is not None, "the login form has no CSRF token"
    csrf = _cookie_header(form)
    answer = client.post(
        "/ops/login",
        data={"email": email, "password": password, "next": "/ops/", "_csrf_token": token[1]},
        headers={"Cookie": csrf},
    )
    assert answer.status_code == 303, f"dashboard login failed: {answer.status_code}"
    return f"{csrf}; {_cookie_header(answer)}"


def _cookie_header(response: httpx.Response) -> str:
    return "; ".join(value.split(";", 1)[0] for value in response.headers.get_list("set-cookie"))


def _time(client: httpx.Client, path: str, cookie: str, repeats: int) -> dict[str, Any]:
    timings, statuses = [], set()
    for _ in range(repeats + 1):  # the first read warms caches and is not counted
        began = time.perf_counter()
        response = client.get(path, headers={"Cookie": cookie})
        timings.append((time.perf_counter() - began) * 1000)
        statuses.add(response.status_code)
    counted = sorted(timings[1:])
    return {
        "median_ms": round(statistics.median(counted), 1),
        "p95_ms": round(counted[max(0, round(0.95 * len(counted)) - 1)], 1),
        "max_ms": round(counted[-1], 1),
        "statuses": sorted(statuses),
        "within_budget": counted[-1] < DASHBOARD_BUDGET_MS and statuses == {200},
    }
