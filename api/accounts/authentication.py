"""Bearer authentication: every route needs a valid access token unless it opts out.

The middleware runs for all routes, so a new route is protected by default; public ones say so
with `PUBLIC` in their `opt` (or are under /health and /schema). It only establishes who is
calling; what they may do is the guards' job (`api.accounts.guards`).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme

from core.accounts.tokens import AccessClaims, AccessTokenVerifier, InvalidAccessToken
from core.errors import UnauthorizedError
from core.settings import Settings

BEARER = "BearerToken"
BEARER_SECURITY: list[SecurityRequirement] = [{BEARER: []}]
PUBLIC_OPT = "public"
PUBLIC = {PUBLIC_OPT: True}
# /ops has its own browser session and guards (api.ops.auth); a bearer token means nothing there.
PUBLIC_PATHS = ["^/health/", "^/schema", "^/ops(/|$)"]

SECURITY_COMPONENTS = Components(
    security_schemes={
        BEARER: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="JWT",
            description="The `accessToken` from /api/auth/login, /register or /refresh.",
        )
    }
)


Caller = Request[AccessClaims, str, State]
"""The request of a bearer-authenticated route: `request.user` is the caller's verified claims.

Handlers read the caller from the request rather than from a dependency: Litestar resolves two
or more independent dependencies (the caller and `db_session`) in an anyio task group, which on
the accept path was about 280 of its 3,300 Python calls."""


class BearerAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    def __init__(self, app: Any, tokens: AccessTokenVerifier) -> None:
        super().__init__(app, exclude=PUBLIC_PATHS, exclude_from_auth_key=PUBLIC_OPT)
        self.tokens = tokens

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _missing_token()
        try:
            claims = self.tokens.verify(token.strip())
        except InvalidAccessToken as exc:
            code = "token_expired" if exc.expired else "invalid_token"
            raise UnauthorizedError("The access token is invalid or expired.", code=code) from None
        return AuthenticationResult(user=claims, auth=token)


def authentication_middleware(settings: Settings) -> DefineMiddleware:
    # One verifier for the app: Litestar builds a middleware instance per route.
    return DefineMiddleware(BearerAuthenticationMiddleware, tokens=AccessTokenVerifier(settings))


def claims_of(connection: ASGIConnection[Any, Any, Any, Any]) -> AccessClaims:
    """The authenticated caller; 401 on a route that was (wrongly) left public."""
    claims = connection.scope.get("user")
    if not isinstance(claims, AccessClaims):
        raise _missing_token()
    return claims


def _missing_token() -> UnauthorizedError:
    return UnauthorizedError("A bearer access token is required.", code="missing_token")
