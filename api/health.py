from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from core.health import ComponentState, check_components


class Liveness(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    components: dict[str, ComponentState]


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", summary="The process is up")
    async def live(self) -> Liveness:
        return Liveness("up")

    @get(
        "/ready",
        summary="PostgreSQL and Redis are reachable",
        responses={503: ResponseSpec(Readiness, description="A component is down; it is named")},
    )
    async def ready(self, state: State) -> Response[Readiness]:
        components = await check_components(state.engine, state.redis)
        down = sorted(name for name, component in components.items() if not component.up)
        status = f"down: {', '.join(down)}" if down else "up"
        return Response(Readiness(status, components), status_code=503 if down else 200)
