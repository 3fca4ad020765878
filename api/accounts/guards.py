"""Role guards: every protected route names the roles that may call it.

`support` reads everything and changes nothing, so write routes list `WRITE_ROLES` (or `ADMIN`)
and a support token gets 403 there.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from api.accounts.authentication import claims_of
from core.accounts.models import Role
from core.errors import ForbiddenError

ANY_ROLE = (Role.USER, Role.SUPPORT, Role.ADMIN)
WRITE_ROLES = (Role.USER, Role.ADMIN)


class RoleGuard:
    """A Litestar guard admitting callers that hold at least one of `roles`."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        self.roles = frozenset(roles)

    async def __call__(
        self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        # async, though nothing awaits: Litestar would run a sync guard in a worker thread.
        if self.roles.isdisjoint(claims_of(connection).roles):
            allowed = ", ".join(sorted(self.roles))
            raise ForbiddenError(f"This needs one of the roles: {allowed}.", code="role_required")


def requires_role(*roles: Role) -> RoleGuard:
    return RoleGuard(roles)
