"""The overview: queues, workers, jobs, purchases and subscriptions by state, RuStore, scheduler.

The page loads once; its body refreshes itself from /ops/live/overview (ops.js), so a phone left
open on it keeps showing the current state without reloading the whole page.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from api.ops.auth import OPS_PATH, VIEW
from api.ops.pages import page
from core.ops.overview import load_overview

REFRESH_SECONDS = 5


class OverviewController(Controller):
    path = OPS_PATH
    guards = [VIEW]
    include_in_schema = False

    @get("/")
    async def overview(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        overview = await load_overview(db_session, state.redis)
        return page(request, "overview.html", overview=overview, refresh_seconds=REFRESH_SECONDS)

    @get("/live/overview")
    async def live(self, state: State, db_session: NamedDependency[AsyncSession]) -> Response[Any]:
        overview = await load_overview(db_session, state.redis)
        return Template(template_name="overview_live.html", context={"overview": overview})
