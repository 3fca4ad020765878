"""An account and a current bearer token per role, on a running Kopilka (in-process or external).

A user registers over HTTP like any client. Support and admin accounts cannot be made through the
api (by design), so they are created in the stack's database as
`python -m core.accounts.cli create-admin` does, then log in over HTTP. The token is renewed by
logging in again at half its lifetime, so a deep run outlives ACCESS_TOKEN_TTL_SECONDS.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from core.accounts import service
from core.accounts.models import Role
from core.db import async_database_url, create_sessionmaker

PASSWORD = "Fuzz-password-42"
HTTP_TIMEOUT = 30.0
RATE_LIMITED_TRIES = 3
MAX_WAIT_SECONDS = 61.0


@dataclass
class RoleSession:
    """An account of one role, logged in on demand."""

    api_url: str
    role: Role
    email: str
    _token: str = ""
    _renew_at: float = 0.0

    def token(self) -> str:
        if time.monotonic() >= self._renew_at:
            tokens = _post(self.api_url, "/api/auth/login", self.email).json()
            self._token = tokens["accessToken"]
            self._renew_at = time.monotonic() + tokens["expiresIn"] / 2
        return self._token


def role_session(api_url: str, role: Role, database_url: str | None) -> RoleSession:
    """A new account with `role` on the api at `api_url`; support and admin need the stack's
    database (`database_url`), and a LookupError says so when it is not given."""
    email = f"fuzz-{role}-{uuid.uuid4().hex[:12]}@fuzz.kopilka.example"
    if role is Role.USER:
        _post(api_url, "/api/auth/register", email)
    elif database_url is None:
        raise LookupError(f"the {role} account needs the stack's database (FUZZ_DATABASE_URL)")
    else:
        # A thread of its own: asyncio.run must not touch the event loop pytest-asyncio keeps.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, _create_in_database(database_url, email, role)).result()
    session = RoleSession(api_url, role, email)
    session.token()  # before the fuzzing spends the login rate limit of this address
    return session


def _post(api_url: str, path: str, email: str) -> httpx.Response:
    """POST credentials; on a 429 from the per-minute auth rate limit, wait and try again.

    A longer Retry-After is the failed-login lockout of this address, which fuzzing the login
    route trips on a stack with the usual limits: say how to start it instead (docs/fuzzing.md).
    """
    for _ in range(RATE_LIMITED_TRIES):
        body = {"email": email, "password": PASSWORD}
        response = httpx.post(f"{api_url}{path}", json=body, timeout=HTTP_TIMEOUT)
        retry_after = float(response.headers.get("Retry-After", "1"))
        if response.status_code != 429:
            break
        if retry_after > MAX_WAIT_SECONDS:
            raise RuntimeError(
                f"{path}: 429 for {retry_after:.0f} s ({response.json().get('code')}); start the "
                "stack with RATE_LIMIT_PER_MINUTE, AUTH_RATE_LIMIT_PER_MINUTE and "
                "LOGIN_MAX_FAILURES_PER_ADDRESS raised for a fuzz run"
            )
        time.sleep(retry_after)
    return response.raise_for_status()


async def _create_in_database(database_url: str, email: str, role: Role) -> None:
    engine = create_async_engine(async_database_url(database_url))
    try:
        async with create_sessionmaker(engine)() as session:
            await service.create_user(session, email, PASSWORD, [role])
            await session.commit()
    finally:
        await engine.dispose()
