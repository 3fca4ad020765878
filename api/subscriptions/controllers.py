"""Subscribing, following a subscription, access (entitlements), and the admin refund."""

from __future__ import annotations

import uuid

from litestar import Controller, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY, Caller
from api.accounts.guards import ANY_ROLE, WRITE_ROLES, requires_role
from api.errors import problem_responses
from api.idempotency import IdempotentOperation, submit_idempotently, unclaimed_key
from api.jobs import send_after_commit
from api.openapi import success_body
from api.purchases.schemas import IntentIn, IntentOut
from api.subscriptions.schemas import (
    EntitlementOut,
    EntitlementsOut,
    RecheckOut,
    StateOut,
    StatusOut,
    SubscriptionOut,
    VerifyIn,
)
from core.accounts.models import Role
from core.db import utcnow
from core.errors import ConflictError
from core.purchases import service as purchases
from core.queue import SUBSCRIPTION_CHECK, SUBSCRIPTION_VERIFY
from core.settings import Settings
from core.subscriptions import service
from core.subscriptions.pipeline import SubscriptionSync
from core.subscriptions.schedule import CheckPolicy

CANCEL_IN_RUSTORE = (
    "RuStore lets only the subscriber cancel a subscription, in the RuStore app: "
    "profile → subscriptions → choose the subscription → cancel. "
    "Access lasts until the paid period ends."
)


class SubscriptionsController(Controller):
    path = "/api"
    tags = ["subscriptions"]
    security = BEARER_SECURITY

    @post(
        "/subscriptions/create",
        status_code=HTTP_201_CREATED,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Start a subscription: an order id and developer payload for the RuStore SDK",
        responses=problem_responses(400, 401, 403, 429),
    )
    async def create(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        data: JSONBody[IntentIn],
    ) -> IntentOut:
        intent = await purchases.create_intent(
            db_session, request.user.user_id, data.product_id, service.SUBSCRIPTION_TYPES
        )
        await db_session.commit()
        return IntentOut.from_model(intent)

    @post(
        "/subscriptions/verify",
        status_code=HTTP_202_ACCEPTED,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Report a RuStore subscription for verification",
        description="Needs an `Idempotency-Key` header. Answers 202 once it is stored; follow "
        "`statusUrl`.",
        operation_class=IdempotentOperation,
        responses={
            **success_body(HTTP_202_ACCEPTED, SubscriptionOut, "Stored; follow `statusUrl`"),
            **problem_responses(400, 401, 403, 409, 422, 429),
        },
    )
    async def verify(
        self,
        request: Caller,
        state: State,
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[VerifyIn],
    ) -> Response[bytes]:
        outcome, created = await submit_idempotently(
            unclaimed_key(request, request.user.user_id, data),
            db_session,
            lambda: service.submit(db_session, request.user.user_id, data.submission()),
            lambda sub: SubscriptionOut.from_model(sub, utcnow()),
        )
        for row in created:
            await send_after_commit(state, SUBSCRIPTION_VERIFY, row.id, service.check_now)
        return outcome.response()

    @get(
        "/subscriptions/status",
        guards=[requires_role(*ANY_ROLE)],
        summary="Whether the caller has an active subscription, and each of theirs",
        responses=problem_responses(401, 429),
    )
    async def status(self, db_session: NamedDependency[AsyncSession], request: Caller) -> StatusOut:
        current = await service.current(db_session, request.user.user_id)
        return StatusOut(
            active=any(c.state.has_access for c in current),
            subscriptions=[StateOut.from_current(c) for c in current],
        )

    @get(
        "/subscriptions/{subscription_id:uuid}",
        guards=[requires_role(*ANY_ROLE)],
        summary="A subscription's processing status and state",
        responses=problem_responses(401, 404, 429),
    )
    async def get_subscription(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        subscription_id: FromPath[uuid.UUID],
    ) -> SubscriptionOut:
        sub = await service.get_own(db_session, request.user.user_id, subscription_id)
        return SubscriptionOut.from_model(sub, utcnow())

    @post(
        "/subscriptions/cancel",
        guards=[requires_role(*WRITE_ROLES)],
        summary="Cancelling happens in the RuStore app (always a 409 explaining where)",
        responses=problem_responses(401, 403, 409, 429),
    )
    async def cancel(self) -> None:
        raise ConflictError(CANCEL_IN_RUSTORE, code="cancel_in_rustore")

    @post(
        "/subscriptions/renew",
        status_code=HTTP_202_ACCEPTED,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Re-read the caller's subscriptions from RuStore now",
        description="For the app to call after the user paid or renewed in RuStore; the result "
        "shows in /api/subscriptions/status once the check ran.",
        responses=problem_responses(401, 403, 429),
    )
    async def renew(
        self,
        state: State,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
    ) -> RecheckOut:
        ids = await service.recheckable(db_session, request.user.user_id)
        for subscription_id in ids:  # one the queue did not take waits for the next claim
            await send_after_commit(state, SUBSCRIPTION_CHECK, subscription_id, service.check_now)
        return RecheckOut(ids)

    @get(
        "/entitlements",
        guards=[requires_role(*ANY_ROLE)],
        summary="What the caller may use now, until when, and what grants it",
        responses=problem_responses(401, 429),
    )
    async def entitlements(
        self, db_session: NamedDependency[AsyncSession], request: Caller
    ) -> EntitlementsOut:
        granted = await service.entitlements(db_session, request.user.user_id)
        return EntitlementsOut([EntitlementOut.from_entitlement(item) for item in granted])


class SubscriptionsAdminController(Controller):
    path = "/api/admin/subscriptions"
    tags = ["admin"]
    security = BEARER_SECURITY
    guards = [requires_role(Role.ADMIN)]

    @post(
        "/{subscription_id:uuid}/refund",
        status_code=HTTP_200_OK,
        summary="Refund a subscription's invoice at RuStore and end its access",
        description="Repeatable: a refunded subscription is answered as it is. 409 "
        "`invoice_unknown` when no invoice id is known (refund it in the RuStore Console).",
        responses=problem_responses(401, 403, 404, 409, 429, 503),
    )
    async def refund(
        self,
        state: State,
        settings: NamedDependency[Settings],
        request: Caller,
        subscription_id: FromPath[uuid.UUID],
    ) -> SubscriptionOut:
        policy = CheckPolicy.from_settings(settings)
        sync = SubscriptionSync(state.engine, state.rustore, policy)
        sub = await sync.refund(subscription_id, request.user)
        return SubscriptionOut.from_model(sub, utcnow())
