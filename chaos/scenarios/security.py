"""Security and abuse (scenarios 25-30) against the running api, and the clock skew against the
sandbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import jwt

from bench.stack import Proc
from chaos.audit import audit
from chaos.context import Context, User, accepted_ids
from chaos.scenarios.registry import Verdict, scenario
from devstack import PROJECT_ROOT

FUZZ_DIR = PROJECT_ROOT / "tests" / "fuzz"
LIMIT_PER_MINUTE = 100
BURST = 160
BIG_BODY = 10 * 1024 * 1024
NESTING = 100_000
RSS_GROWTH_MB = 60.0
SKEW_SECONDS = 90


@scenario(25, "security", "A asks for B's purchase, subscription, history", "foreign ids")
def foreign_ids(ctx: Context) -> Verdict:
    alice, bob = ctx.users(2)
    [bobs] = ctx.paid([bob], 1)
    [answer] = ctx.submit([bobs.verify()])
    purchase_id = str(answer.body["id"])
    verdict = Verdict()
    probes = {
        "B's purchase": f"/api/payments/{purchase_id}",
        "an unknown purchase": f"/api/payments/{uuid.uuid4()}",
        "a subscription by id": f"/api/subscriptions/{uuid.uuid4()}",
    }
    for name, path in probes.items():
        status = ctx.http.get(path, headers=alice.headers).status_code
        verdict.expect(status == 404, f"A asking for {name}: {status}")
    history = ctx.http.get("/api/points/history", headers=alice.headers).json()
    verdict.expect(not history.get("items"), "A's history shows entries that are not A's")
    verdict.expect(uuid.UUID(purchase_id).version == 4, "purchase ids are not random UUIDs")
    own = ctx.http.get(f"/api/payments/{purchase_id}", headers=bob.headers).status_code
    verdict.expect(own == 200, f"B asking for B's own purchase: {own}")
    return verdict.audited(audit(ctx, paid=[bobs], accepted=[purchase_id]))


@scenario(26, "security", "Extra fields (status, points, user_id, price)", "mass assignment")
def extra_fields(ctx: Context) -> Verdict:
    alice, bob = ctx.users(2)
    [paid] = ctx.paid([alice], 1)
    verdict = Verdict()
    extras: dict[str, Any] = {
        "status": "credited",
        "points": 1_000_000,
        "userId": str(bob.id),
        "user_id": str(bob.id),
        "price": 1,
    }
    for field, value in extras.items():
        body = {**paid.verify().body, field: value}
        status = ctx.http.post(
            "/api/payments/verify",
            json=body,
            headers={**alice.headers, "Idempotency-Key": uuid.uuid4().hex},
        ).status_code
        verdict.expect(status == 400, f"verify with {field!r}: {status}")
    spend = ctx.http.post(
        "/api/points/spend",
        json={"amount": 1, "reason": "x", "userId": str(bob.id)},
        headers={**alice.headers, "Idempotency-Key": uuid.uuid4().hex},
    ).status_code
    verdict.expect(spend == 400, f"spend with userId: {spend}")
    rows = ctx.sql("SELECT count(*) FROM purchases WHERE invoice_id = :i", i=paid.invoice_id)
    verdict.expect(rows[0][0] == 0, "a refused request wrote a purchase")
    return verdict.audited(audit(ctx, paid=[paid], credit=[]))


@scenario(27, "security", "Forged, expired and misused tokens", "bad JWTs / refresh reuse", ci=True)
def bad_tokens(ctx: Context) -> Verdict:
    settings = ctx.settings
    [user] = ctx.users(1)
    now = dt.datetime.now(dt.UTC)
    good = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user.id),
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "roles": ["user"],
    }
    secret = settings.jwt_secret

    def signed(claims: dict[str, Any], key: str = secret, algorithm: str = "HS256") -> str:
        return jwt.encode(claims, key, algorithm=algorithm)

    no_exp = {k: v for k, v in good.items() if k != "exp"}
    tokens = {
        "alg=none": jwt.encode(good, "", algorithm="none"),
        "wrong key": signed(good, "x" * 48),
        "wrong algorithm (HS512)": signed(good, algorithm="HS512"),
        "expired": signed({**good, "exp": now - dt.timedelta(minutes=5)}),
        "wrong audience": signed({**good, "aud": "someone-else"}),
        "wrong issuer": signed({**good, "iss": "someone-else"}),
        "no exp": signed(no_exp),
        "refresh typ": signed({**good, "typ": "refresh"}),
    }
    verdict = Verdict()
    control = ctx.http.get(
        "/api/points/balance", headers={"Authorization": f"Bearer {signed(good)}"}
    )
    verdict.expect(control.status_code == 200, f"a good token got {control.status_code}")
    for name, token in tokens.items():
        status = ctx.http.get(
            "/api/points/balance", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        verdict.expect(status == 401, f"{name}: {status}")
    _refresh_misuse(ctx, verdict)
    return verdict


def _refresh_misuse(ctx: Context, verdict: Verdict) -> None:
    """A refresh token is no access token; a rotated one presented again is refused (and revokes
    the login's tokens)."""
    credentials = {
        "email": f"chaos-{uuid.uuid4().hex[:10]}@kopilka.example",
        "password": "Chaos-pass-1234",
    }
    registered = ctx.http.post("/api/auth/register", json=credentials)
    verdict.expect(registered.status_code in (200, 201), f"register: {registered.status_code}")
    if registered.status_code not in (200, 201):
        return
    refresh = registered.json()["refreshToken"]
    as_access = ctx.http.get("/api/points/balance", headers={"Authorization": f"Bearer {refresh}"})
    verdict.expect(
        as_access.status_code == 401, f"refresh token as access: {as_access.status_code}"
    )
    rotated = ctx.http.post("/api/auth/refresh", json={"refreshToken": refresh})
    verdict.expect(rotated.status_code == 200, f"first refresh: {rotated.status_code}")
    reused = ctx.http.post("/api/auth/refresh", json={"refreshToken": refresh})
    verdict.expect(reused.status_code == 401, f"reused rotated refresh token: {reused.status_code}")
    if rotated.status_code == 200:
        newest = ctx.http.post(
            "/api/auth/refresh", json={"refreshToken": rotated.json()["refreshToken"]}
        )
        verdict.expect(newest.status_code == 401, f"after reuse, the newest: {newest.status_code}")


@scenario(28, "security", "Request flood, 10 MB body, deep JSON", "abuse with limits on")
def abuse(ctx: Context) -> Verdict:
    """The api restarted with its real limits (the harness lifts them otherwise) and the loopback
    trusted as a proxy, so X-Forwarded-For names the clients (127.0.0.2 floods, 127.0.0.3 not)."""
    stack = ctx.stack
    [user] = ctx.users(1)  # before the limits: earlier scenarios' requests count for 127.0.0.1
    stack.restart("web", RATE_LIMIT_PER_MINUTE=str(LIMIT_PER_MINUTE), TRUSTED_PROXIES="127.0.0.1")
    verdict = Verdict()
    try:
        _flood(ctx, verdict)
        _big_bodies(ctx, verdict, stack.proc("web"), user)
    finally:
        stack.restart("web")
    return verdict


def _flood(ctx: Context, verdict: Verdict) -> None:
    async def burst() -> tuple[list[httpx.Response], int]:
        async with httpx.AsyncClient(base_url=ctx.stack.api_url, timeout=30) as client:
            flood = await asyncio.gather(
                *(
                    client.get("/api/products", headers={"X-Forwarded-For": "127.0.0.2"})
                    for _ in range(BURST)
                )
            )
            other = await client.get("/api/products", headers={"X-Forwarded-For": "127.0.0.3"})
        return list(flood), other.status_code

    flood, other = asyncio.run(burst())
    limited = [r for r in flood if r.status_code == 429]
    codes = sorted({r.status_code for r in flood})
    verdict.details["flood"] = {"answers": codes, "limited": len(limited), "other_client": other}
    verdict.expect(set(codes) <= {200, 429}, f"the flood got {codes}")
    verdict.expect(len(limited) >= BURST - LIMIT_PER_MINUTE, f"only {len(limited)} limited")
    verdict.expect(all(r.headers.get("Retry-After") for r in limited), "429 without Retry-After")
    verdict.expect(other == 200, f"another client was refused too: {other}")


def _big_bodies(ctx: Context, verdict: Verdict, web: Proc, user: User) -> None:
    """From a client of its own (127.0.0.4), so the answers are about the bodies, not a limit
    the flood or earlier scenarios spent."""
    rss_before = web.rss_mb()
    headers = {
        "X-Forwarded-For": "127.0.0.4",
        **user.headers,
        "Idempotency-Key": uuid.uuid4().hex,
        "Content-Type": "application/json",
    }
    answers: dict[str, set[int | str]] = {}
    for name, body in {
        "10 MB body": b'{"purchaseId": "' + b"a" * BIG_BODY + b'"}',
        "deeply nested JSON": b"[" * NESTING + b"]" * NESTING,
    }.items():
        for _ in range(3):
            status: int | str
            try:
                status = ctx.http.post(
                    "/api/payments/verify", content=body, headers=headers
                ).status_code
            except httpx.HTTPError as exc:  # the api may close the connection on an oversize body
                status = type(exc).__name__
            answers.setdefault(name, set()).add(status)
    rss_after = web.rss_mb()
    verdict.details["bodies"] = {k: sorted(map(str, v)) for k, v in answers.items()}
    verdict.details["web_rss_mb"] = [round(rss_before, 1), round(rss_after, 1)]
    verdict.expect(answers["10 MB body"] <= {413}, f"10 MB body: {answers['10 MB body']}")
    verdict.expect(
        answers["deeply nested JSON"] <= {400}, f"nested: {answers['deeply nested JSON']}"
    )
    verdict.expect(
        rss_after - rss_before < RSS_GROWTH_MB, f"api memory {rss_before}→{rss_after} MB"
    )


@scenario(29, "security", "OpenAPI fuzzing (schemathesis) against the stack", "tests/fuzz")
def fuzzing(ctx: Context) -> Verdict:
    """tests/fuzz pointed at the running api (FUZZ_API_URL); bandit and pip-audit run in
    `make lint`."""
    if not (FUZZ_DIR / "conftest.py").exists():
        return Verdict(skipped="tests/fuzz does not exist")
    env = {
        **os.environ,
        "FUZZ_API_URL": ctx.stack.api_url,
        "FUZZ_DATABASE_URL": ctx.stack.env["DATABASE_URL"],
        "FUZZ_EXAMPLES": str(ctx.scale(3, 12)),
        # The suite's own fixtures insist on both; the harness's servers are the only ones here.
        "DATABASE_URL": ctx.stack.env["DATABASE_URL"],
        "REDIS_URL": ctx.stack.env["REDIS_URL"],
    }
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", str(FUZZ_DIR), "-q", "-p", "no:cacheprovider"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    tail = completed.stdout.strip().splitlines()[-1:] or ["(no output)"]
    verdict = Verdict(details={"pytest": tail[0], "seconds": round(time.monotonic() - started, 1)})
    verdict.expect(completed.returncode == 0, f"tests/fuzz failed: {tail[0]}")
    if completed.returncode:
        (ctx.stack.log_dir / "fuzz.log").write_text(completed.stdout + completed.stderr)
    return verdict


@scenario(30, "security", "Our clock 90 s off RuStore's", "sandbox clock skew", ci=True)
def clock_skew(ctx: Context) -> Verdict:
    count, skewed_for = ctx.scale(6, 20), ctx.scale(8.0, 30.0)
    users = ctx.users(3)
    paid = ctx.paid(users, count)
    stack = ctx.stack
    stack.sandbox("POST", "/clock/skew", {"seconds": SKEW_SECONDS})
    stack.kill_worker()  # a new worker has no cached RuStore token: it must authenticate
    worker = stack.start_worker()
    started = time.time()
    answers = ctx.submit([p.verify() for p in paid])
    time.sleep(skewed_for)
    states = ctx.sql(
        "SELECT state, count(*) FROM purchases WHERE invoice_id = ANY(:i) GROUP BY state",
        i=[p.invoice_id for p in paid],
    )
    refusals = _auth_refusals(ctx, worker)
    stack.sandbox("POST", "/clock/skew", {"seconds": 0})
    healed = time.time()
    verdict = Verdict(details={"states_while_skewed": {s: n for s, n in states}})
    verdict.details["auth_refusals_logged"] = refusals
    verdict.details["skewed_s"] = round(healed - started, 1)
    verdict.expect("credited" not in dict(states), f"credited while skewed: {states}")
    verdict.expect(refusals > 0, "no auth refusal in the worker's log")
    tally = audit(ctx, paid=paid, accepted=accepted_ids(answers).values(), heal_at=healed)
    verdict.expect(tally.retries > 0 or tally.redeliveries > 0, "no retry observed")
    return verdict.audited(tally)


def _auth_refusals(ctx: Context, worker: Proc) -> int:
    """Warnings the worker logged for refused RuStore authentications (the operator's alert)."""
    return sum(
        1
        for event in ctx.stack.events(worker.name)
        if event.get("event") == "rustore.request"
        and event.get("rustore_method") == "auth"
        and event.get("status") != 200
    )
