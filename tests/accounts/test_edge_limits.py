"""Rate limits per client address, login lockout per address, body size, nesting, CORS.

The limits are exercised on an app of their own with tiny limits behind a trusted proxy
(127.0.0.1), so each test is a new client by its X-Forwarded-For address, and nothing here
throttles the rest of the suite.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from api.app import create_app
from api.protection import WindowCounter
from api.request_context import RequestContext
from core.settings import Settings
from devstack.ports import free_port
from tests.fixtures.accounts import Account, unique_email
from tests.fixtures.platform import assert_problem, serve

GENERAL_LIMIT = 8
AUTH_LIMIT = 4
ADDRESS_FAILURES = 2
ALLOWED_ORIGIN = "https://app.kopilka.example"
PROFILE = "/api/user/profile"


@pytest.fixture(scope="module")
async def limited_url(settings: Settings) -> AsyncIterator[str]:
    limited = msgspec.structs.replace(
        settings,
        rate_limit_per_minute=GENERAL_LIMIT,
        auth_rate_limit_per_minute=AUTH_LIMIT,
        login_max_failures_per_address=ADDRESS_FAILURES,
        trusted_proxies="127.0.0.1",
        cors_origins=ALLOWED_ORIGIN,
    )
    async with serve(RequestContext(create_app(limited))) as url:
        yield url


def new_address() -> str:
    return str(ipaddress.IPv4Address(0x0A000000 | random.getrandbits(24)))


def client_at(url: str, forwarded_for: str | None = None) -> httpx.AsyncClient:
    """A client the trusted proxy says is `forwarded_for` (a new address by default)."""
    return httpx.AsyncClient(
        base_url=url, headers={"X-Forwarded-For": forwarded_for or new_address()}
    )


async def test_one_client_over_the_limit_is_throttled_and_others_are_not(limited_url: str) -> None:
    async with client_at(limited_url) as noisy, client_at(limited_url) as quiet:
        for _ in range(GENERAL_LIMIT):
            assert (await noisy.get(PROFILE)).status_code == 401

        throttled = await noisy.get(PROFILE)

        assert_problem(throttled, 429, "rate_limited")
        assert 0 < int(throttled.headers["retry-after"]) <= 60
        assert (await quiet.get(PROFILE)).status_code == 401
        assert (await noisy.get("/health/live")).status_code == 200


async def test_the_limit_is_exact_across_api_processes(
    limited_url: str, settings: Settings
) -> None:
    """Two apps (as two api processes) share one Redis count: of many concurrent requests from
    one client, exactly the limit pass, however they interleave."""
    address = new_address()
    second = msgspec.structs.replace(
        settings, rate_limit_per_minute=GENERAL_LIMIT, trusted_proxies="127.0.0.1"
    )
    async with serve(RequestContext(create_app(second))) as second_url:
        clients = [client_at(url, address) for url in (limited_url, second_url)]
        answers = await asyncio.gather(
            *(clients[n % 2].get(PROFILE) for n in range(GENERAL_LIMIT * 3))
        )
        for client in clients:
            await client.aclose()

    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) == GENERAL_LIMIT
    assert statuses.count(429) == GENERAL_LIMIT * 2


async def test_a_client_cannot_escape_its_limit_by_prepending_addresses(limited_url: str) -> None:
    address = new_address()
    async with client_at(limited_url, address) as honest:
        for _ in range(GENERAL_LIMIT):
            await honest.get(PROFILE)
    async with client_at(limited_url, f"{new_address()}, {address}") as spoofing:
        assert (await spoofing.get(PROFILE)).status_code == 429


async def test_login_and_register_have_their_own_stricter_limit(limited_url: str) -> None:
    async with client_at(limited_url) as client:
        for path in ["/api/auth/login", "/api/auth/register"] * (AUTH_LIMIT // 2):
            assert (await client.post(path, json={})).status_code == 400

        throttled = await client.post("/api/auth/register", json={})

        assert_problem(throttled, 429, "rate_limited")
        assert int(throttled.headers["retry-after"]) > 0
        assert (await client.get(PROFILE)).status_code == 401  # the general budget is not spent


async def test_failed_logins_from_one_address_lock_that_address(limited_url: str) -> None:
    async with client_at(limited_url) as attacker, client_at(limited_url) as other:
        for _ in range(ADDRESS_FAILURES):
            wrong = {"email": unique_email(), "password": "wrong-password-1"}
            assert (await attacker.post("/api/auth/login", json=wrong)).status_code == 401

        fresh = {"email": unique_email(), "password": "wrong-password-1"}
        locked = await attacker.post("/api/auth/login", json=fresh)

        assert_problem(locked, 429, "login_locked")
        assert int(locked.headers["retry-after"]) > 0
        assert (await other.post("/api/auth/login", json=fresh)).status_code == 401


async def test_a_10_mb_body_is_a_413(client: httpx.AsyncClient) -> None:
    body = b'{"email": "' + b"a" * (10 * 1024 * 1024) + b'"}'

    response = await client.post(
        "/api/auth/register", content=body, headers={"content-type": "application/json"}
    )

    assert_problem(response, 413, "payload_too_large")


async def test_an_oversized_streamed_body_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    response = await client.post(
        "/api/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )

    assert_problem(response, 413, "payload_too_large")


async def test_deeply_nested_json_is_a_400(client: httpx.AsyncClient) -> None:
    body = b"[" * 100_000 + b"]" * 100_000

    response = await client.post(
        "/api/auth/login", content=body, headers={"content-type": "application/json"}
    )

    assert_problem(response, 400, "invalid_request")


async def test_cors_answers_only_allowlisted_origins(limited_url: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}
    async with client_at(limited_url) as browser:
        allowed = await browser.options(
            "/api/auth/login", headers={"Origin": ALLOWED_ORIGIN, **preflight}
        )
        other = await browser.options(
            "/api/auth/login", headers={"Origin": "https://evil.example", **preflight}
        )

    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-origin" not in other.headers


async def test_without_cors_origins_there_are_no_cors_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"Origin": ALLOWED_ORIGIN})

    assert "access-control-allow-origin" not in response.headers


async def test_with_redis_down_limits_fail_open_and_logins_still_work(
    settings: Settings, user_account: Account
) -> None:
    """Redis is a cache here: losing it must not lock everyone out of the api."""
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(msgspec.structs.replace(settings, redis_url=unreachable, redis_timeout=0.5))
    async with serve(RequestContext(app)) as url, httpx.AsyncClient(base_url=url) as client:
        login = {"email": user_account.email, "password": user_account.password}
        response = await client.post("/api/auth/login", json=login)

        assert response.status_code == 200
        assert (await client.get(PROFILE)).status_code == 401


async def test_requests_counted_together_each_get_their_own_number(settings: Settings) -> None:
    """The counts of one batch go to Redis in one call, a client's several with one INCRBY;
    each request still gets the number it would have had counted alone."""
    redis = Redis.from_url(settings.redis_url)
    counter = WindowCounter(redis)
    first, second = (f"kopilka:test_window:{new_address()}" for _ in range(2))
    try:
        counts = await asyncio.gather(
            counter.count(first, 60),
            counter.count(second, 60),
            counter.count(first, 60),
            counter.count(first, 60),
        )
        later = await counter.count(first, 60)
    finally:
        await redis.delete(first, second)
        await redis.aclose()

    assert [number for number, _ in counts] == [1, 1, 2, 3]
    assert later[0] == 4
    assert all(0 < seconds_left <= 60 for _, seconds_left in [*counts, later])
