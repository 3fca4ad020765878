from __future__ import annotations

import uuid

import structlog
from dramatiq.brokers.redis import RedisBroker
from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY
from api.accounts.guards import requires_role
from api.diagnostics.schemas import PingIn, PingOut
from api.errors import problem_responses
from core.accounts.models import Role
from core.diagnostics import service
from core.queue import DIAGNOSTICS_PING, send

log = structlog.get_logger(__name__)


class DiagnosticsController(Controller):
    path = "/api/diagnostics"
    tags = ["diagnostics"]
    security = BEARER_SECURITY

    @post(
        "/pings",
        status_code=HTTP_202_ACCEPTED,
        summary="Send a ping through the job pipeline",
        guards=[requires_role(Role.ADMIN)],
        responses=problem_responses(400, 401, 403, 429),
    )
    async def create_ping(
        self,
        db_session: NamedDependency[AsyncSession],
        broker: NamedDependency[RedisBroker],
        data: JSONBody[PingIn | None] = None,
    ) -> Response[PingOut]:
        note = data.note if data else None
        ping = await service.create_ping(db_session, source="api", note=note)
        await db_session.commit()
        send(broker, DIAGNOSTICS_PING, str(ping.id))
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
