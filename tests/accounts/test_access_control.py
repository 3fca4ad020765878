"""Access tokens are accepted only exactly as issued; roles decide what a caller may do."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from litestar.routes import HTTPRoute

from api.accounts.authentication import PUBLIC_OPT
from api.accounts.guards import RoleGuard
from api.app import create_app
from core.accounts.tokens import LEEWAY_SECONDS, AccessTokenVerifier, InvalidAccessToken
from core.settings import Settings
from tests.fixtures.accounts import Account
from tests.fixtures.platform import assert_problem

PROFILE = "/api/user/profile"


def valid_claims(settings: Settings, user_id: str, **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "roles": ["user"],
        **overrides,
    }
    return {name: value for name, value in claims.items() if value is not None}


def unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, default=lambda d: int(d.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def call_profile(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(PROFILE, headers={"Authorization": f"Bearer {token}"})


async def test_a_token_built_like_ours_is_accepted(
    client: httpx.AsyncClient, settings: Settings, user_account: Account
) -> None:
    """The control for the refusals below: they fail for the one thing each changes."""
    token = jwt.encode(valid_claims(settings, user_account.user_id), settings.jwt_secret, "HS256")

    assert (await call_profile(client, token)).status_code == 200


async def test_expiry_within_the_leeway_is_tolerated(
    client: httpx.AsyncClient, settings: Settings, user_account: Account
) -> None:
    recently = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=3)
    claims = valid_claims(settings, user_account.user_id, exp=recently)

    token = jwt.encode(claims, settings.jwt_secret, "HS256")
    assert (await call_profile(client, token)).status_code == 200


RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    ("overrides", "key", "algorithm", "code"),
    [
        ({}, "another-secret-that-is-long-enough-000", "HS256", "invalid_token"),
        ({}, None, "HS512", "invalid_token"),
        ({}, RSA_KEY, "RS256", "invalid_token"),
        (
            {"exp": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)},
            None,
            "HS256",
            "token_expired",
        ),
        ({"aud": "someone-else"}, None, "HS256", "invalid_token"),
        ({"iss": "someone-else"}, None, "HS256", "invalid_token"),
        ({"exp": None}, None, "HS256", "invalid_token"),
        ({"jti": None}, None, "HS256", "invalid_token"),
        ({"sub": None}, None, "HS256", "invalid_token"),
        ({"typ": None}, None, "HS256", "invalid_token"),
        ({"typ": "refresh"}, None, "HS256", "invalid_token"),
        ({"sub": "not-a-uuid"}, None, "HS256", "invalid_token"),
        ({"roles": ["superuser"]}, None, "HS256", "invalid_token"),
    ],
    ids=[
        "other-key",
        "hs512",
        "rs256",
        "expired",
        "audience",
        "issuer",
        "no-exp",
        "no-jti",
        "no-sub",
        "no-typ",
        "typ-refresh",
        "bad-sub",
        "unknown-role",
    ],
)
@pytest.mark.filterwarnings("ignore:The HMAC key is")  # the HS512 token's key is weak on purpose
async def test_tokens_we_did_not_issue_are_refused(
    client: httpx.AsyncClient,
    settings: Settings,
    user_account: Account,
    overrides: dict[str, Any],
    key: Any,
    algorithm: str,
    code: str,
) -> None:
    claims = valid_claims(settings, user_account.user_id, **overrides)
    token = jwt.encode(claims, key or settings.jwt_secret, algorithm)

    response = await call_profile(client, token)

    assert_problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_alg_none_is_refused(
    client: httpx.AsyncClient, settings: Settings, user_account: Account
) -> None:
    token = unsigned(valid_claims(settings, user_account.user_id))

    assert_problem(await call_profile(client, token), 401, "invalid_token")


@pytest.mark.parametrize("kind", ["refresh-token", "random"])
async def test_a_refresh_token_or_any_string_is_not_an_access_token(
    client: httpx.AsyncClient, user_account: Account, kind: str
) -> None:
    token = user_account.refresh_token if kind == "refresh-token" else uuid.uuid4().hex

    assert_problem(await call_profile(client, token), 401, "invalid_token")


@pytest.mark.parametrize("header", [None, "Bearer", "Token abc", "Basic dXNlcjpwYXNz"])
async def test_missing_bearer_token_is_a_401(client: httpx.AsyncClient, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}

    assert_problem(await client.get(PROFILE, headers=headers), 401, "missing_token")


async def test_user_cannot_use_admin_routes(
    client: httpx.AsyncClient, user_account: Account
) -> None:
    response = await client.post("/api/diagnostics/pings", json={}, headers=user_account.headers)
    assert_problem(response, 403, "role_required")

    unknown = "/api/diagnostics/pings/00000000-0000-4000-8000-000000000000"
    assert_problem(await client.get(unknown, headers=user_account.headers), 403, "role_required")


async def test_support_reads_but_cannot_write(
    client: httpx.AsyncClient, support_account: Account, admin_account: Account
) -> None:
    created = await client.post("/api/diagnostics/pings", json={}, headers=admin_account.headers)
    assert created.status_code == 202

    read = await client.get(created.headers["location"], headers=support_account.headers)
    assert read.status_code == 200
    write = await client.post("/api/diagnostics/pings", json={}, headers=support_account.headers)
    assert_problem(write, 403, "role_required")


def test_every_api_route_is_public_by_choice_or_guarded_by_role(settings: Settings) -> None:
    """New routes are caught here if they forget `requires_role(...)`."""
    app = create_app(settings)
    unguarded = [
        f"{sorted(handler.http_methods)} {route.path}"
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/api/")
        for handler in route.route_handlers
        if handler.http_methods != {"OPTIONS"}  # Litestar's own CORS preflight answer
        and not handler.opt.get(PUBLIC_OPT)
        and not any(isinstance(guard, RoleGuard) for guard in handler.resolve_guards())
    ]
    assert unguarded == []


@pytest.mark.parametrize("path", ["/health/live", "/schema/openapi.json"])
async def test_health_and_schema_stay_public(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


def test_a_remembered_token_is_refused_once_it_expires(
    settings: Settings, user_account: Account
) -> None:
    """The verifier remembers tokens it checked; expiry is still checked on every use."""
    verifier = AccessTokenVerifier(settings)
    expires = int(time.time()) - LEEWAY_SECONDS + 1  # valid for about one more second
    claims = valid_claims(settings, user_account.user_id, exp=expires)
    token = jwt.encode(claims, settings.jwt_secret, "HS256")
    assert verifier.verify(token).user_id == uuid.UUID(user_account.user_id)

    time.sleep(max(expires + LEEWAY_SECONDS - time.time(), 0) + 0.05)

    with pytest.raises(InvalidAccessToken) as refused:
        verifier.verify(token)
    assert refused.value.expired
