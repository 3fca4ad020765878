"""Purchases: find one by any of its ids, its user or its state; read its timeline."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from api.ops.auth import OPS_PATH, VIEW
from api.ops.pages import SEARCH_RESULTS, SearchText, StateFilter, page, search_page
from core.accounts.repository import UserRepository
from core.ops import search
from core.purchases.models import PurchaseState
from core.purchases.repository import PurchaseRepository
from core.purchases.timeline import purchase_timeline


class PurchasesController(Controller):
    path = f"{OPS_PATH}/purchases"
    guards = [VIEW]
    include_in_schema = False

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        q: SearchText = None,
        chosen_state: StateFilter = None,
    ) -> Response[Any]:
        state = chosen_state or None
        found = search.search_purchases(db_session, query=q, state=state, limit=SEARCH_RESULTS)
        return await search_page(
            request, "purchases.html", found, q=q, selected_state=state, states=list(PurchaseState)
        )

    @get("/{purchase_id:uuid}")
    async def purchase(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        purchase_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        timeline = await purchase_timeline(db_session, purchase_id)  # 404 for an unknown id
        purchase = await PurchaseRepository(db_session).get(purchase_id)
        assert purchase is not None
        owner = await UserRepository(db_session).get(purchase.user_id)
        return page(request, "purchase.html", purchase=purchase, owner=owner, timeline=timeline)
