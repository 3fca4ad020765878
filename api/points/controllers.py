from __future__ import annotations

import uuid
from typing import Any, Protocol

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY, Caller
from api.accounts.guards import ANY_ROLE, WRITE_ROLES, requires_role
from api.errors import problem_responses
from api.idempotency import IdempotentOperation, run_idempotent, unclaimed_key
from api.openapi import success_body
from api.paging import PageLimit, id_cursor
from api.points.schemas import AdjustIn, BalanceOut, HistoryPage, LedgerEntryOut, SpendIn
from core.accounts.models import Role
from core.accounts.tokens import AccessClaims
from core.db import session_driver
from core.points import service as points

NEW_BALANCE = success_body(200, BalanceOut, "The balance after the change")


class PointsController(Controller):
    """The caller's own points."""

    path = "/api/points"
    tags = ["points"]
    security = BEARER_SECURITY

    @get("/balance", guards=[requires_role(*ANY_ROLE)], responses=problem_responses(401, 429))
    async def balance(
        self, db_session: NamedDependency[AsyncSession], request: Caller
    ) -> BalanceOut:
        balance, debt = await points.standing(db_session, request.user.user_id)
        return BalanceOut(balance, debt)

    @get(
        "/history",
        guards=[requires_role(*ANY_ROLE)],
        summary="Ledger entries, newest first",
        responses=problem_responses(400, 401, 429),
    )
    async def history(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        cursor: FromQuery[str | None] = None,
        limit: PageLimit = 20,
    ) -> HistoryPage:
        entries = await points.history(db_session, request.user.user_id, id_cursor(cursor), limit)
        next_cursor = str(entries[-1].id) if len(entries) == limit else None
        return HistoryPage([LedgerEntryOut.from_model(e) for e in entries], next_cursor)

    @post(
        "/spend",
        status_code=200,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Spend points (Idempotency-Key required)",
        description="409 `insufficient_points` when the balance is lower than `amount`.",
        operation_class=IdempotentOperation,
        responses={**NEW_BALANCE, **problem_responses(400, 401, 403, 409, 422, 429)},
    )
    async def spend(
        self,
        request: Caller,
        db_session: NamedDependency[AsyncSession],
        data: JSONBody[SpendIn],
    ) -> Response[bytes]:
        async def work() -> tuple[int, BalanceOut]:
            change = await points.spend(
                await session_driver(db_session),
                request.user.user_id,
                data.amount,
                spend_id=uuid.uuid4().hex,
                reason=data.reason,
            )
            return 200, BalanceOut(change.balance, change.debt)

        key = unclaimed_key(request, request.user.user_id, data)
        outcome = await run_idempotent(key, db_session, work)
        return outcome.response()


class PointsAdminController(Controller):
    """Admin corrections to a user's points; each keeps its reason in the ledger."""

    path = "/api/admin/users/{user_id:uuid}/points"
    tags = ["admin"]
    security = BEARER_SECURITY
    guards = [requires_role(Role.ADMIN)]

    @post(
        "/grant",
        status_code=200,
        operation_class=IdempotentOperation,
        responses={**NEW_BALANCE, **problem_responses(400, 401, 403, 404, 422, 429)},
    )
    async def grant(
        self,
        request: Caller,
        db_session: NamedDependency[AsyncSession],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[AdjustIn],
    ) -> Response[bytes]:
        return await _adjust(request, db_session, request.user, user_id, data, points.grant)

    @post(
        "/clawback",
        status_code=200,
        operation_class=IdempotentOperation,
        responses={**NEW_BALANCE, **problem_responses(400, 401, 403, 404, 422, 429)},
    )
    async def clawback(
        self,
        request: Caller,
        db_session: NamedDependency[AsyncSession],
        user_id: FromPath[uuid.UUID],
        data: JSONBody[AdjustIn],
    ) -> Response[bytes]:
        return await _adjust(request, db_session, request.user, user_id, data, points.take_back)


class Adjustment(Protocol):
    """`points.grant` or `points.take_back`."""

    async def __call__(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        amount: int,
        *,
        reason: str,
        actor: AccessClaims,
    ) -> points.Change: ...


async def _adjust(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    principal: AccessClaims,
    user_id: uuid.UUID,
    data: AdjustIn,
    operation: Adjustment,
) -> Response[bytes]:
    """An admin grant or clawback, audited, idempotent under the admin's Idempotency-Key."""

    async def work() -> tuple[int, BalanceOut]:
        change = await operation(session, user_id, data.amount, reason=data.reason, actor=principal)
        return 200, BalanceOut(change.balance, change.debt)

    outcome = await run_idempotent(unclaimed_key(request, principal.user_id, data), session, work)
    return outcome.response()
