from __future__ import annotations

import uuid

import structlog
from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY
from api.accounts.guards import requires_role
from api.diagnostics.schemas import PingIn, PingOut
from api.errors import problem_responses
from api.jobs import JobSender
from api.openapi import OptionalBodyOperation
from core.accounts.models import Role
from core.diagnostics import service
from core.errors import ServiceUnavailableError
from core.queue import DIAGNOSTICS_PING

log = structlog.get_logger(__name__)


class DiagnosticsController(Controller):
    path = "/api/diagnostics"
    tags = ["diagnostics"]
    security = BEARER_SECURITY

    @post(
        "/pings",
        status_code=HTTP_202_ACCEPTED,
        summary="Send a ping through the job pipeline",
        description="503 `queue_unavailable` when the queue cannot take the ping: the ping is "
        "kept, as a record that the pipeline was broken.",
        guards=[requires_role(Role.ADMIN)],
        operation_class=OptionalBodyOperation,
        responses=problem_responses(400, 401, 403, 429, 503),
    )
    async def create_ping(
        self,
        state: State,
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[PingIn | None] = None,
    ) -> Response[PingOut]:
        note = data.note if data else None
        ping = await service.create_ping(db_session, source="api", note=note)
        await db_session.commit()
        sender: JobSender = state.job_sender
        if not await sender.send(DIAGNOSTICS_PING, str(ping.id)):
            raise ServiceUnavailableError(
                f"Ping {ping.id} is stored but the queue is unreachable",
                code="queue_unavailable",
            )
        log.info("diagnostics.ping.enqueued", ping_id=str(ping.id))
        out = PingOut.from_model(ping)
        return Response(out, status_code=HTTP_202_ACCEPTED, headers={"Location": out.status_url})

    @get(
        "/pings/{ping_id:uuid}",
        summary="Where a ping got to",
        guards=[requires_role(Role.SUPPORT, Role.ADMIN)],
        responses=problem_responses(401, 403, 404, 429),
    )
    async def get_ping(
        self, db_session: NamedDependency[AsyncSession], ping_id: FromPath[uuid.UUID]
    ) -> PingOut:
        return PingOut.from_model(await service.get_ping(db_session, ping_id))
