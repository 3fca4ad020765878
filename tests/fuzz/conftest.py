"""The target of the fuzz run: the app served from this process, or FUZZ_API_URL.

In-process, the app runs under uvicorn in a thread with its own event loop: schemathesis calls
it synchronously (requests), and a server on the session's event loop would never get to answer
while a synchronous test blocks that loop.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import schemathesis
from schemathesis import AuthContext, Case
from schemathesis.schemas import BaseSchema

from api.app import create_app
from api.request_context import RequestContext
from core.accounts.models import Role
from core.settings import Settings
from devstack.ports import free_port
from tests.fixtures.platform import local_server
from tests.fuzz.accounts import RoleSession, role_session

EXTERNAL_API_URL = os.environ.get("FUZZ_API_URL", "").rstrip("/")
EXTERNAL_DATABASE_URL = os.environ.get("FUZZ_DATABASE_URL") or None
DEFAULT_EXAMPLES = 50
"""Hypothesis examples per operation and role in the fuzzing phase (the examples and coverage
phases add their own cases): about a minute and 9,000 requests for the whole file on 2 busy
cores. FUZZ_EXAMPLES raises it for a deeper run (docs/fuzzing.md)."""
STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class FuzzTarget:
    api_url: str
    database_url: str | None


@contextmanager
def serve_in_thread(app: object) -> Iterator[str]:
    """Serve `app` from a thread with its own event loop; yields its base URL."""
    port = free_port()
    server = local_server(app, port)
    thread = threading.Thread(target=server.run, name="fuzz-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the api did not start for the fuzz run")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


if EXTERNAL_API_URL:

    @pytest.fixture(scope="session", autouse=True)
    def _fresh_redis() -> None:
        """An external stack's Redis is not ours to flush (overrides tests/fixtures/platform)."""

    @pytest.fixture(scope="session")
    def fuzz_target() -> FuzzTarget:
        return FuzzTarget(EXTERNAL_API_URL, EXTERNAL_DATABASE_URL)

else:

    @pytest.fixture(scope="session")
    def fuzz_target(settings: Settings) -> Iterator[FuzzTarget]:
        # The test settings already lift the rate limits (tests/fixtures/platform.TEST_ENV), so a
        # 429 cannot hide every other answer; a 429 that does come must still match the schema.
        assert settings.rate_limit_per_minute >= 100_000
        with serve_in_thread(RequestContext(create_app(settings))) as url:
            yield FuzzTarget(url, settings.database_url)


def fuzz_examples() -> int:
    return int(os.environ.get("FUZZ_EXAMPLES", DEFAULT_EXAMPLES))


@pytest.fixture(scope="session", params=list(Role))
def caller(request: pytest.FixtureRequest, fuzz_target: FuzzTarget) -> RoleSession:
    role: Role = request.param
    try:
        return role_session(fuzz_target.api_url, role, fuzz_target.database_url)
    except LookupError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def api_schema(fuzz_target: FuzzTarget, caller: RoleSession) -> BaseSchema:
    """The running api's own schema, requests signed as `caller`.

    The token goes in through schemathesis's auth, not as a plain header, so that a negative case
    that leaves the Authorization header out really goes without it.
    """
    schema = schemathesis.openapi.from_url(f"{fuzz_target.api_url}/schema/openapi.json")
    schema.config.update(base_url=fuzz_target.api_url)
    schema.config.generation.update(max_examples=fuzz_examples())

    @schema.auth(refresh_interval=None)  # RoleSession renews the token itself
    class Bearer:
        def get(self, case: Case, context: AuthContext) -> str:
            return caller.token()

        def set(self, case: Case, token: str, context: AuthContext) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    return schema


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """schemathesis 4.32's lazy schema renames the test through `item._nodeid`, which pytest 9.2
    no longer has (it keeps `_id`); give it one to write to. Remove once schemathesis follows."""
    if not hasattr(item, "_nodeid"):
        item._nodeid = item.nodeid  # type: ignore[attr-defined]
