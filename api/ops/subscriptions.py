"""Subscriptions: find one by any of its ids, its user or its state; read it; refund it."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from api.ops.auth import ACT, OPS_PATH, VIEW, operator_of
from api.ops.pages import SEARCH_RESULTS, SearchText, StateFilter, done, page, search_page
from core.accounts.repository import UserRepository
from core.errors import KopilkaError, NotFoundError
from core.ops import search
from core.settings import Settings
from core.subscriptions.pipeline import SubscriptionSync
from core.subscriptions.repository import SubscriptionRepository
from core.subscriptions.schedule import CheckPolicy

PATH = f"{OPS_PATH}/subscriptions"


class SubscriptionsController(Controller):
    path = PATH
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
        found = search.search_subscriptions(db_session, query=q, state=state, limit=SEARCH_RESULTS)
        states = sorted(search.SUBSCRIPTION_STATES)
        return await search_page(
            request, "subscriptions.html", found, q=q, selected_state=state, states=states
        )

    @get("/{subscription_id:uuid}")
    async def subscription(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        subscription_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        sub = await SubscriptionRepository(db_session).get(subscription_id)
        if sub is None:
            raise NotFoundError(f"No subscription {subscription_id}", code="subscription_not_found")
        owner = await UserRepository(db_session).get(sub.user_id)
        return page(request, "subscription.html", sub=sub, owner=owner)

    @post("/{subscription_id:uuid}/refund", guards=[ACT])
    async def refund(
        self,
        request: Request[Any, Any, Any],
        state: State,
        settings: NamedDependency[Settings],
        subscription_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        """The same refund as the json admin api (it writes the audit entry)."""
        operator = operator_of(request)
        assert operator is not None  # the ACT guard let the request in
        sync = SubscriptionSync(state.engine, state.rustore, CheckPolicy.from_settings(settings))
        back = f"{PATH}/{subscription_id}"
        try:
            await sync.refund(subscription_id, operator)
        except NotFoundError:
            raise
        except KopilkaError as exc:
            return done(request, f"Not refunded: {exc.detail}", back)
        return done(request, "Refunded; access has ended.", back)
