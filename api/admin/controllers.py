from __future__ import annotations

from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY
from api.accounts.guards import requires_role
from api.admin.schemas import AuditEntryOut, AuditPage
from api.errors import problem_responses
from api.paging import PageLimit, id_cursor
from core.accounts.models import Role
from core.audit import service as audit
from core.audit.models import Target

TargetType = Annotated[
    Target | None, QueryParameter(name="targetType", description="What the entries are about")
]
TargetId = Annotated[str | None, QueryParameter(name="targetId", min_length=1, max_length=128)]


class AuditController(Controller):
    """The audit log: every admin action, newest first; support reads it too."""

    path = "/api/admin/audit"
    tags = ["admin"]
    security = BEARER_SECURITY
    guards = [requires_role(Role.SUPPORT, Role.ADMIN)]

    @get(
        "/",
        summary="Audit entries, newest first",
        description="Filter by `targetType` (and `targetId`); page with `cursor`.",
        responses=problem_responses(400, 401, 403, 429),
    )
    async def entries(
        self,
        db_session: NamedDependency[AsyncSession],
        target_type: TargetType = None,
        target_id: TargetId = None,
        cursor: FromQuery[str | None] = None,
        limit: PageLimit = 50,
    ) -> AuditPage:
        rows = await audit.list_entries(
            db_session,
            target_type=target_type,
            target_id=target_id,
            before_id=id_cursor(cursor),
            limit=limit,
        )
        next_cursor = str(rows[-1].id) if len(rows) == limit else None
        return AuditPage([AuditEntryOut.from_model(row) for row in rows], next_cursor)
