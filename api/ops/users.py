"""Users: find one; their card (balance, ledger, subscriptions, purchases); an admin grants or
claws back points with a mandatory reason. The points service writes the audit entry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession

from api.ops.auth import ACT, OPS_PATH, VIEW, operator_of
from api.ops.pages import SEARCH_RESULTS, SearchText, done, page, search_page
from core.audit.service import Actor
from core.ops import search
from core.points import service as points

PATH = f"{OPS_PATH}/users"
MAX_AMOUNT = 1_000_000_000  # as the json admin api (api.points.schemas.Amount)
MAX_REASON = 500


class Adjustment(Protocol):
    """`points.grant` or `points.take_back`."""

    async def __call__(
        self, session: AsyncSession, user_id: uuid.UUID, amount: int, *, reason: str, actor: Actor
    ) -> points.Change: ...


@dataclass(frozen=True)
class AdjustmentForm:
    """What the grant/clawback form sent, kept to show it again next to its errors."""

    amount: str
    reason: str

    @classmethod
    def read(cls, form: FormMultiDict) -> AdjustmentForm:
        return cls(str(form.get("amount", "")).strip(), str(form.get("reason", "")).strip())

    def errors(self) -> dict[str, str]:
        errors = {}
        if not (self.amount.isascii() and self.amount.isdigit()) or not (
            0 < int(self.amount) <= MAX_AMOUNT
        ):
            errors["amount"] = f"A whole number of points from 1 to {MAX_AMOUNT:,}."
        if not self.reason:
            errors["reason"] = "A reason is required: it is kept in the ledger and the audit log."
        elif len(self.reason) > MAX_REASON:
            errors["reason"] = f"At most {MAX_REASON} characters."
        return errors


class UsersController(Controller):
    path = PATH
    guards = [VIEW]
    include_in_schema = False

    @get("/")
    async def search(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        q: SearchText = None,
    ) -> Response[Any]:
        found = search.search_users(db_session, query=q, limit=SEARCH_RESULTS)
        return await search_page(request, "users.html", found, q=q)

    @get("/{user_id:uuid}")
    async def card(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        user_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        return await _card(request, db_session, user_id)

    @post("/{user_id:uuid}/grant", guards=[ACT])
    async def grant(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        user_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        return await _adjust(request, db_session, user_id, points.grant, "Granted")

    @post("/{user_id:uuid}/clawback", guards=[ACT])
    async def clawback(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[AsyncSession],
        user_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        return await _adjust(request, db_session, user_id, points.take_back, "Took back")


async def _card(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    form: AdjustmentForm | None = None,
    errors: dict[str, str] | None = None,
) -> Response[Any]:
    card = await search.user_card(session, user_id)  # 404 for an unknown id
    return page(
        request,
        "user.html",
        status_code=400 if errors else 200,
        card=card,
        form=form,
        errors=errors or {},
        form_error="Nothing was changed; correct the form." if errors else None,
        max_amount=MAX_AMOUNT,
        max_reason=MAX_REASON,
    )


async def _adjust(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    user_id: uuid.UUID,
    operation: Adjustment,
    past: str,
) -> Response[Any]:
    """`points.grant` or `points.take_back`, after the form is checked (400 with the card and
    the errors next to the fields when it is not)."""
    operator = operator_of(request)
    assert operator is not None  # the ACT guard let the request in
    form = AdjustmentForm.read(await request.form())
    if errors := form.errors():
        return await _card(request, session, user_id, form=form, errors=errors)
    change = await operation(session, user_id, int(form.amount), reason=form.reason, actor=operator)
    await session.commit()
    message = f"{past} {form.amount} points. Balance {change.balance}, debt {change.debt}."
    return done(request, message, f"{PATH}/{user_id}")
