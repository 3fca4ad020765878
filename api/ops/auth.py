"""Who is looking at /ops: the browser session the login form opens, CSRF, and the role guards.

The dashboard does not take bearer tokens; a browser logs in with the same accounts and the same
password check and lockout as /api/auth/login (`core.accounts.service.authenticate`).

- Session: server-side, in Redis (Litestar's server-side sessions on the `ops_sessions` store).
  The cookie carries only a random id: HttpOnly, SameSite=Strict, Path=/ops, and Secure unless
  OPS_ALLOW_PLAIN_HTTP is set. A login lasts OPS_SESSION_TTL_SECONDS. The session holds the
  user id and the login time only: every request re-reads the account, so a removed role or a
  deleted account locks its sessions out at once. Login stores the session under a new id (no
  session fixation); a visitor who is not logged in gets no session at all.
- CSRF: Litestar's CSRF middleware on the /ops router only: every POST needs the signed token
  of the CSRF cookie back in the form. The JSON api under /api, authenticated by a header a
  browser never sends on its own, neither needs nor gets it.
- Roles: `support` and `admin` see every page (`VIEW`); only `admin` acts (`ACT`). Anyone else
  is sent to the login form (no session) or refused (a session without those roles).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.stores.redis import RedisStore
from litestar.types import ASGIApp, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items
from redis.asyncio import Redis

from core.accounts import service as accounts
from core.accounts.models import Role, User
from core.errors import UnauthorizedError
from core.settings import Settings

OPS_PATH = "/ops"
SESSION_STORE = "ops_sessions"
SESSION_COOKIE = "kopilka_ops_session"
CSRF_COOKIE = "kopilka_ops_csrf"
OPS_PUBLIC_OPT = "ops_public"
OPS_PUBLIC = {OPS_PUBLIC_OPT: True}
"""`opt` of the /ops routes a visitor without a session may reach: the login form, static files."""

USER_KEY = "user_id"
SINCE_KEY = "since"
ROTATE_KEY = "_new_id"
VIEW_ROLES = frozenset({Role.SUPPORT, Role.ADMIN})


@dataclass(frozen=True)
class Operator:
    """The person at the dashboard; also the `actor` of the audit entries their actions write."""

    user_id: uuid.UUID
    email: str
    roles: frozenset[str]

    @property
    def can_act(self) -> bool:
        return Role.ADMIN in self.roles

    @property
    def can_view(self) -> bool:
        return not VIEW_ROLES.isdisjoint(self.roles)

    @classmethod
    def of(cls, user: User) -> Operator:
        return cls(user.id, user.email, frozenset(user.roles))


class LoginRequired(NotAuthorizedException):
    """No valid session: the browser is sent to the login form (api.ops.pages)."""


def operator_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Operator | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Operator) else None


class OpsGuard:
    """Admits operators holding one of `roles`; `support` passes VIEW and is refused by ACT."""

    def __init__(self, roles: frozenset[str], refusal: str) -> None:
        self.roles = roles
        self.refusal = refusal

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        operator = operator_of(connection)
        if operator is None:
            raise LoginRequired()
        if self.roles.isdisjoint(operator.roles):
            raise PermissionDeniedException(self.refusal)


VIEW = OpsGuard(VIEW_ROLES, "The dashboard is for the support and admin roles.")
ACT = OpsGuard(frozenset({Role.ADMIN}), "Only an admin may do this; support accounts only read.")


class OpsAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Turns the session's user id into an `Operator`, re-reading the account every time."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, exclude_from_auth_key=OPS_PUBLIC_OPT)

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        state = connection.app.state
        session = connection.session
        user_id = _uuid_or_none(session.get(USER_KEY))
        since = session.get(SINCE_KEY)
        lifetime: int = state.settings.ops_session_ttl_seconds
        if user_id is None or not isinstance(since, int) or time.time() - since > lifetime:
            raise LoginRequired()
        try:
            async with state.sessionmaker() as db_session:
                user = await accounts.get_user(db_session, user_id)
        except UnauthorizedError:  # the account was deleted
            raise LoginRequired() from None
        return AuthenticationResult(user=Operator.of(user), auth=None)


def start_session(connection: ASGIConnection[Any, Any, Any, Any], user: User) -> None:
    """Log the browser in as `user`, under a new session id, for OPS_SESSION_TTL_SECONDS
    however busy it keeps the session (the overview refreshes itself)."""
    connection.set_session({USER_KEY: str(user.id), SINCE_KEY: int(time.time()), ROTATE_KEY: True})


class RotatingSessionBackend(ServerSideSessionBackend):
    """Litestar's server-side sessions, storing nothing for visitors who are not logged in, and
    with a fresh id for a session marked by `start_session`: the id a browser held before
    logging in (which someone else may have planted) is dropped."""

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        held = connection.cookies.get(self.config.key)
        held = held if held and held != "null" else None
        session = scope_session if isinstance(scope_session, dict) else {}  # Empty: logged out
        rotate = bool(session.pop(ROTATE_KEY, False))
        if session and not rotate:
            await super().store_in_message(scope_session, message, connection)
            return
        store = self.config.get_store_from_app(connection.scope["app"])
        if held is not None:
            await self.delete(held, store=store)
        if not session:
            # Logged out, or never logged in: nothing is stored (a visitor must not be able to
            # fill Redis with empty sessions), and a cookie the browser still holds is expired.
            if held is not None:
                self._set_cookie(message, "", max_age=0)
            return
        new_id = self.generate_session_id()
        await self.set(new_id, self.serialize_data(session, connection.scope), store=store)
        self._set_cookie(message, new_id)

    def _set_cookie(self, message: Message, value: str, **overrides: Any) -> None:
        params = extract_dataclass_items(
            self.config, exclude_none=True, include=set(Cookie.__dict__)
        )
        cookie = Cookie(key=self.config.key, value=value, **{**dict(params), **overrides})
        MutableScopeHeaders.from_message(message).add("Set-Cookie", cookie.to_header(header=""))


@dataclass
class OpsSessionConfig(ServerSideSessionConfig):
    _backend_class = RotatingSessionBackend


def ops_stores(redis: Redis) -> dict[str, Store]:
    return {SESSION_STORE: RedisStore(redis, namespace="kopilka:ops_session")}


def ops_middleware(settings: Settings) -> list[DefineMiddleware]:
    """Session first (authentication reads it), then who is calling, then the CSRF check."""
    secure = not settings.ops_allow_plain_http
    session = OpsSessionConfig(
        store=SESSION_STORE,
        key=SESSION_COOKIE,
        path=OPS_PATH,
        max_age=settings.ops_session_ttl_seconds,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    csrf = CSRFConfig(
        secret=_csrf_secret(settings),
        cookie_name=CSRF_COOKIE,
        cookie_path=OPS_PATH,
        cookie_secure=secure,
        cookie_httponly=True,  # pages carry the token in their forms; scripts never read it
        cookie_samesite="strict",
    )
    return [
        session.middleware,
        DefineMiddleware(OpsAuthenticationMiddleware),
        DefineMiddleware(CSRFMiddleware, config=csrf),
    ]


def _csrf_secret(settings: Settings) -> str:
    """Derived from JWT_SECRET, so there is no second secret to configure and rotate."""
    return hmac.new(settings.jwt_secret.encode(), b"kopilka-ops-csrf", hashlib.sha256).hexdigest()


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
