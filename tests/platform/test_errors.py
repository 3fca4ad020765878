"""Every error leaves in one format: RFC 9457 problem details plus a stable `code`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from litestar import get

from api.accounts.authentication import PUBLIC
from api.app import create_app
from api.request_context import RequestContext
from core.errors import ConflictError
from core.settings import Settings
from devstack.ports import free_port
from tests.fixtures.accounts import Account
from tests.fixtures.platform import assert_problem, serve


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/no/such/thing"), 404, "not_found")


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/health/live"), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("body", "code", "hint"),
    [
        (b"{not json", "invalid_request", "JSON is malformed"),
        (b'{"note": 5}', "validation_error", "note: Expected `str | null`, got `int`"),
        (b'{"note": "ok", "status": "done"}', "validation_error", "unknown field `status`"),
        (b'{"note": "' + b"x" * 201 + b'"}', "validation_error", "note: Expected `str` of length"),
    ],
)
async def test_malformed_body_is_a_400_problem_naming_the_field(
    client: httpx.AsyncClient, admin_account: Account, body: bytes, code: str, hint: str
) -> None:
    response = await client.post(
        "/api/diagnostics/pings",
        content=body,
        headers={**admin_account.headers, "content-type": "application/json"},
    )
    problem = assert_problem(response, 400, code)
    assert hint in problem["detail"]


async def test_unknown_id_is_a_404_problem(
    client: httpx.AsyncClient, admin_account: Account
) -> None:
    response = await client.get(
        "/api/diagnostics/pings/00000000-0000-4000-8000-000000000000",
        headers=admin_account.headers,
    )
    assert_problem(response, 404, "not_found")


@get("/boom", sync_to_thread=False, opt=PUBLIC)
def boom() -> None:
    raise RuntimeError("secret internals")


@get("/conflict", sync_to_thread=False, opt=PUBLIC)
def conflict() -> None:
    raise ConflictError("Already there", code="already_there", existingId="abc")


@pytest.fixture(scope="module")
async def app_with_failing_routes(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.register(boom)
    app.register(conflict)
    async with serve(RequestContext(app)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_unexpected_exception_is_a_500_problem_without_internals(
    app_with_failing_routes: httpx.AsyncClient,
) -> None:
    response = await app_with_failing_routes.get("/boom")
    problem = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text
    assert problem["detail"] == "The server could not complete the request."


async def test_domain_error_keeps_its_code_and_extra_fields(
    app_with_failing_routes: httpx.AsyncClient,
) -> None:
    problem = assert_problem(await app_with_failing_routes.get("/conflict"), 409, "already_there")
    assert problem["detail"] == "Already there"
    assert problem["existingId"] == "abc"


async def test_ping_with_the_queue_unreachable_is_a_503_and_the_ping_is_kept(
    settings: Settings, admin_account: Account
) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(msgspec.structs.replace(settings, redis_url=dead_redis))
    async with serve(RequestContext(app)) as url, httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/api/diagnostics/pings", headers=admin_account.headers)
        problem = assert_problem(response, 503, "queue_unavailable")
        ping_id = problem["detail"].split()[1]
        kept = await client.get(f"/api/diagnostics/pings/{ping_id}", headers=admin_account.headers)

    assert kept.status_code == 200
    assert kept.json()["status"] == "queued"
