"""The journal of RuStore notifications: type, time, outcome, error; an admin replays one."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from api.jobs import send_after_commit
from api.ops.auth import ACT, OPS_PATH, VIEW, operator_of
from api.ops.pages import choice, done, page
from core.notifications import service
from core.notifications.models import NotificationStatus
from core.queue import NOTIFICATION_PROCESS

PATH = f"{OPS_PATH}/notifications"
ROWS = 50


class NotificationsController(Controller):
    path = PATH
    guards = [VIEW]
    include_in_schema = False

    @get("/")
    async def journal(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[str | None] = None,
        before: FromQuery[uuid.UUID | None] = None,
    ) -> Response[Any]:
        chosen = choice(NotificationStatus, status, "status")
        rows = await service.journal(db_session, chosen, before, ROWS)
        return page(
            request,
            "notifications.html",
            notifications=rows,
            status=chosen,
            statuses=list(NotificationStatus),
            next_before=rows[-1].id if len(rows) == ROWS else None,
        )

    @post("/{notification_id:uuid}/replay", guards=[ACT])
    async def replay(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[AsyncSession],
        notification_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """As the json admin api: reopen (audited) and commit, then send the job."""
        operator = operator_of(request)
        assert operator is not None  # the ACT guard let the request in
        row = await service.reopen(db_session, notification_id, actor=operator)
        await db_session.commit()
        await send_after_commit(state, NOTIFICATION_PROCESS, row.id, service.mark_not_enqueued)
        return done(request, f"Notification {row.notification_id} sent for processing again.", PATH)
