"""The audit log, read-only: who did what, when, to what, and the state before and after."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from api.ops.auth import OPS_PATH, VIEW
from api.ops.pages import choice, page
from api.paging import id_cursor
from core.audit import service as audit
from core.audit.models import Target

ROWS = 50
LINKED = {Target.USER: "users", Target.SUBSCRIPTION: "subscriptions", Target.PURCHASE: "purchases"}


class AuditController(Controller):
    path = f"{OPS_PATH}/audit"
    guards = [VIEW]
    include_in_schema = False

    @get("/")
    async def entries(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        target: FromQuery[str | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> Response[Any]:
        chosen = choice(Target, target, "target")
        entries = await audit.list_entries(
            db_session, target_type=chosen, before_id=id_cursor(cursor), limit=ROWS
        )
        return page(
            request,
            "audit.html",
            entries=entries,
            target=chosen,
            targets=list(Target),
            linked={str(kind): path for kind, path in LINKED.items()},
            next_cursor=str(entries[-1].id) if len(entries) == ROWS else None,
        )
