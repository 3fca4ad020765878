"""RuStore's webhook endpoints and the notification journal for support and admins."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY, PUBLIC, Caller
from api.accounts.guards import requires_role
from api.deps import provide_settings
from api.errors import problem_responses
from api.jobs import JobSender
from api.paging import PageLimit
from api.webhooks.schemas import NotificationOut, NotificationPage, WebhookAck
from core.accounts.models import Role
from core.errors import NotFoundError
from core.notifications import service
from core.notifications.models import NotificationStatus
from core.queue import NOTIFICATION_PROCESS

WEBHOOK_DESCRIPTION = (
    "Called by RuStore, not by apps: no bearer token, no rate limit; the AES-256-GCM payload is "
    "the proof of origin. 200 once stored (also for a repeated notification id); 400 when the "
    "body does not decrypt or is not a notification for this endpoint, so RuStore resends it."
)


class WebhooksController(Controller):
    path = "/api/webhooks/rustore"
    tags = ["webhooks"]

    @post(
        "/",
        opt=PUBLIC,
        status_code=HTTP_200_OK,
        summary="RuStore server notifications (production card)",
        description=WEBHOOK_DESCRIPTION,
        responses=problem_responses(400, 413),
    )
    async def production(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[AsyncSession],
    ) -> WebhookAck:
        # Settings come from the state, not injected: Litestar resolves two dependencies in an
        # anyio task group, a cost every notification would pay.
        key = provide_settings(state).rustore_webhook_key
        return await _receive(request, state, db_session, key, sandbox=False)

    @post(
        "/sandbox",
        opt=PUBLIC,
        status_code=HTTP_200_OK,
        summary="RuStore server notifications (test payments card)",
        description=WEBHOOK_DESCRIPTION
        + " 404 `webhook_not_configured` while RUSTORE_SANDBOX_WEBHOOK_KEY is empty.",
        responses=problem_responses(400, 404, 413),
    )
    async def sandbox(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[AsyncSession],
    ) -> WebhookAck:
        key = provide_settings(state).rustore_sandbox_webhook_key
        if not key:
            raise NotFoundError(
                "Test-payment notifications are not configured (RUSTORE_SANDBOX_WEBHOOK_KEY).",
                code="webhook_not_configured",
            )
        return await _receive(request, state, db_session, key, sandbox=True)


async def _receive(
    request: Request[Any, Any, Any],
    state: State,
    session: AsyncSession,
    key: str,
    *,
    sandbox: bool,
) -> WebhookAck:
    """Check, store once, commit, then send the job: the row, not Redis, makes it durable."""
    delivery = service.open_delivery(await request.body(), key, sandbox=sandbox)
    notification_id = await service.record(session, delivery)
    await session.commit()
    if notification_id is None:
        return WebhookAck("duplicate")
    await _enqueue(state, session, notification_id)
    return WebhookAck("accepted")


async def _enqueue(state: State, session: AsyncSession, notification_id: uuid.UUID) -> None:
    """Send the job; with the queue down, leave the row for the scheduler's sweep."""
    sender: JobSender = state.job_sender
    if not await sender.send(NOTIFICATION_PROCESS, str(notification_id)):
        await service.mark_not_enqueued(session, notification_id)
        await session.commit()


class NotificationsAdminController(Controller):
    """The journal of RuStore notifications: what arrived, what processing made of it."""

    path = "/api/admin/notifications"
    tags = ["admin"]
    security = BEARER_SECURITY

    @get(
        "/",
        guards=[requires_role(Role.SUPPORT, Role.ADMIN)],
        summary="Notifications, newest first",
        responses=problem_responses(400, 401, 403, 429),
    )
    async def journal(
        self,
        db_session: NamedDependency[AsyncSession],
        status: FromQuery[NotificationStatus | None] = None,
        before: FromQuery[uuid.UUID | None] = None,
        limit: PageLimit = 50,
    ) -> NotificationPage:
        rows = await service.journal(db_session, status, before, limit)
        next_before = rows[-1].id if len(rows) == limit else None
        return NotificationPage([NotificationOut.from_model(row) for row in rows], next_before)

    @post(
        "/{notification_id:uuid}/replay",
        status_code=HTTP_202_ACCEPTED,
        guards=[requires_role(Role.ADMIN)],
        summary="Process a notification again (it re-reads RuStore, so this is always safe)",
        responses=problem_responses(401, 403, 404, 429),
    )
    async def replay(
        self,
        state: State,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        notification_id: FromPath[uuid.UUID],
    ) -> NotificationOut:
        row = await service.reopen(db_session, notification_id, actor=request.user)
        await db_session.commit()
        await _enqueue(state, db_session, row.id)
        return NotificationOut.from_model(row)
