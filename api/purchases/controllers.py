from __future__ import annotations

import asyncio
import base64
import datetime as dt
import re
import time
import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from api.accounts.authentication import BEARER_SECURITY, Caller
from api.accounts.guards import ANY_ROLE, WRITE_ROLES, requires_role
from api.errors import problem_responses
from api.idempotency import IdempotentOperation, Outcome, submit_idempotently, unclaimed_key
from api.jobs import send_after_commit
from api.openapi import success_body
from api.paging import PageLimit
from api.purchases.schemas import IntentIn, IntentOut, PaymentOut, PaymentPage, VerifyIn
from core.accounts.tokens import AccessClaims
from core.catalogue.models import ProductType
from core.errors import InvalidRequestError
from core.idempotency.service import StoredResponse
from core.purchases import service
from core.purchases.models import Purchase
from core.queue import PURCHASE_VERIFY

MAX_WAIT_SECONDS = 30
PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+)")
RETRY_AFTER_SECONDS = "1"
CONSUMABLES = (ProductType.CONSUMABLE,)
SUBMITTED = {
    **success_body(HTTP_202_ACCEPTED, PaymentOut, "Stored; follow `statusUrl`"),
    **success_body(200, PaymentOut, "Final within `Prefer: wait=N`"),
}


class PurchasesController(Controller):
    """Submitting one-time purchases and following them to a final state."""

    path = "/api"
    tags = ["purchases"]
    security = BEARER_SECURITY

    @post(
        "/purchases/intent",
        status_code=HTTP_201_CREATED,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Start a purchase: an order id and developer payload for the RuStore SDK",
        responses=problem_responses(400, 401, 403, 429),
    )
    async def create_intent(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        data: JSONBody[IntentIn],
    ) -> IntentOut:
        intent = await service.create_intent(
            db_session, request.user.user_id, data.product_id, service.ONE_TIME_TYPES
        )
        await db_session.commit()
        return IntentOut.from_model(intent)

    @post(
        "/payments/verify",
        status_code=HTTP_202_ACCEPTED,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Report a RuStore purchase for verification",
        description="Needs an `Idempotency-Key` header. Answers 202 once the purchase is stored; "
        "`Prefer: wait=N` (N ≤ 30) holds the answer up to N seconds for a final state.",
        operation_class=IdempotentOperation,
        responses={**SUBMITTED, **problem_responses(400, 401, 403, 409, 422, 429)},
    )
    async def verify(
        self, request: Caller, state: State, data: JSONBody[VerifyIn]
    ) -> Response[bytes]:
        return await _submit(request, state, request.user, data, service.ONE_TIME_TYPES)

    @post(
        "/points/buy",
        status_code=HTTP_202_ACCEPTED,
        guards=[requires_role(*WRITE_ROLES)],
        summary="Report a RuStore purchase of points (consumables only)",
        description="The same as /api/payments/verify, for consumable products.",
        operation_class=IdempotentOperation,
        responses={**SUBMITTED, **problem_responses(400, 401, 403, 409, 422, 429)},
    )
    async def buy_points(
        self, request: Caller, state: State, data: JSONBody[VerifyIn]
    ) -> Response[bytes]:
        return await _submit(request, state, request.user, data, CONSUMABLES)

    @get(
        "/payments/{payment_id:uuid}",
        guards=[requires_role(*ANY_ROLE)],
        summary="A purchase's status",
        description="ETag/If-None-Match for cheap polling; `Retry-After` while not final; "
        "`Prefer: wait=N` (N ≤ 30) waits for a final state.",
        responses={
            **success_body(200, PaymentOut, "The purchase"),
            **problem_responses(401, 404, 429),
        },
    )
    async def get_payment(
        self,
        request: Caller,
        state: State,
        payment_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        purchase = await service.poll(state.engine, request.user.user_id, payment_id)
        wait = _prefer_wait(request)
        if wait and not purchase.is_final:
            purchase = await _wait_for_final(state, request.user.user_id, payment_id, wait)
        etag = _etag(purchase)
        headers = _polling_headers(purchase, etag)
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        return Response(PaymentOut.from_model(purchase), headers=headers)

    @get(
        "/payments",
        guards=[requires_role(*ANY_ROLE)],
        summary="The caller's purchases, newest first",
        responses=problem_responses(400, 401, 429),
    )
    async def list_payments(
        self,
        db_session: NamedDependency[AsyncSession],
        request: Caller,
        cursor: FromQuery[str | None] = None,
        limit: PageLimit = 20,
    ) -> PaymentPage:
        purchases = await service.list_own(
            db_session, request.user.user_id, _decode_cursor(cursor), limit
        )
        next_cursor = _encode_cursor(purchases[-1]) if len(purchases) == limit else None
        return PaymentPage([PaymentOut.from_model(p) for p in purchases], next_cursor)


async def _submit(
    request: Request[Any, Any, Any],
    state: State,
    principal: AccessClaims,
    data: VerifyIn,
    types: tuple[ProductType, ...],
) -> Response[bytes]:
    submission = data.submission()
    key = unclaimed_key(request, principal.user_id, data)
    first = await state.first_submissions.submit(key, submission, types, _accepted)
    if first is not None:
        purchase, answer = first
        outcome, created = Outcome(answer.status, answer.body, replayed=False), [purchase]
    else:
        async with state.sessionmaker() as session:
            outcome, created = await submit_idempotently(
                key,
                session,
                lambda: service.submit(session, principal.user_id, submission, types),
                PaymentOut.from_model,
            )
    for row in created:
        await send_after_commit(state, PURCHASE_VERIFY, row.id, service.mark_not_enqueued)
    wait = _prefer_wait(request)
    if not wait or outcome.status != HTTP_202_ACCEPTED:
        return outcome.response()
    submitted = msgspec.json.decode(outcome.body, type=PaymentOut)
    purchase = await _wait_for_final(state, principal.user_id, submitted.id, wait)
    return Response(
        msgspec.json.encode(PaymentOut.from_model(purchase)),
        status_code=200 if purchase.is_final else HTTP_202_ACCEPTED,
        media_type="application/json",
        headers={"Preference-Applied": f"wait={wait}"},
    )


async def _wait_for_final(
    state: State, user_id: uuid.UUID, purchase_id: uuid.UUID, seconds: int
) -> Purchase:
    """Re-read until the purchase is final or `seconds` pass; one indexed read per poll, and
    no connection held in between."""
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        purchase = await service.poll(state.engine, user_id, purchase_id)
        remaining = deadline - time.monotonic()
        if purchase.is_final or remaining <= 0:
            return purchase
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.5)


def _accepted(purchase: Purchase) -> StoredResponse:
    return StoredResponse(HTTP_202_ACCEPTED, msgspec.json.encode(PaymentOut.from_model(purchase)))


def _prefer_wait(request: Request[Any, Any, Any]) -> int:
    match = PREFER_WAIT.search(request.headers.get("prefer", ""))
    return min(int(match.group(1)), MAX_WAIT_SECONDS) if match else 0


def _etag(purchase: Purchase) -> str:
    return f'W/"{purchase.state}-{int(purchase.updated_at.timestamp() * 1_000_000)}"'


def _polling_headers(purchase: Purchase, etag: str) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if not purchase.is_final:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return headers


def _encode_cursor(purchase: Purchase) -> str:
    raw = f"{purchase.created_at.isoformat()}|{purchase.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[dt.datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, purchase_id = raw.split("|")
        return dt.datetime.fromisoformat(created_at), uuid.UUID(purchase_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError(
            "cursor: not a cursor this api returned", code="invalid_cursor"
        ) from None
