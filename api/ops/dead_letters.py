"""Dead letters: jobs Dramatiq gave up on, with their error and traceback; requeue or discard
one, a selection, or all of one actor.

Each message an admin requeues or discards gets its own audit entry (all of an actor: one entry
naming the actor and the count). Redis and PostgreSQL share no transaction, so the entries are
written right after Redis did the work, and only for messages it actually moved or deleted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from api.ops.auth import ACT, OPS_PATH, VIEW, Operator, operator_of
from api.ops.pages import done, page
from core.audit import service as audit
from core.audit.models import Target
from core.errors import invalid_field
from core.ops import dead_letters
from core.queue import ALL_JOBS

PATH = f"{OPS_PATH}/dead-letters"
ACTORS = tuple(sorted(job.actor for job in ALL_JOBS))
MAX_SELECTION = 500

ListLimit = Annotated[int, QueryParameter(ge=1, le=MAX_SELECTION)]


@dataclass(frozen=True)
class Action:
    verb: str
    past: str
    by_ids: Callable[[Redis, Sequence[str]], Awaitable[int]]
    by_actor: Callable[[Redis, str], Awaitable[int]]


REQUEUE = Action("requeue", "Requeued", dead_letters.requeue, dead_letters.requeue_actor)
DISCARD = Action("discard", "Discarded", dead_letters.discard, dead_letters.discard_actor)


class DeadLettersController(Controller):
    path = PATH
    guards = [VIEW]
    include_in_schema = False

    @get("/")
    async def dead_letters(
        self,
        request: Request[Any, Any, Any],
        state: State,
        actor: FromQuery[str | None] = None,
        limit: ListLimit = 100,
    ) -> Response[Any]:
        actor = _known_actor(actor or None)
        letters = await dead_letters.list_dead_letters(state.redis, actor=actor, limit=limit)
        return page(
            request, "dead_letters.html", letters=letters, actors=ACTORS, actor=actor, limit=limit
        )

    @post("/requeue", guards=[ACT])
    async def requeue(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        return await _apply(request, state.redis, db_session, REQUEUE)

    @post("/discard", guards=[ACT])
    async def discard(
        self,
        request: Request[Any, Any, Any],
        state: State,
        db_session: NamedDependency[AsyncSession],
    ) -> Response[Any]:
        return await _apply(request, state.redis, db_session, DISCARD)


async def _apply(
    request: Request[Any, Any, Any], redis: Redis, session: AsyncSession, action: Action
) -> Response[Any]:
    """The form names one message (`one`, a row's button), a selection (`message_id`, the
    ticked boxes) or every dead letter of an actor (`actor`)."""
    form = await request.form()
    operator = operator_of(request)
    assert operator is not None  # the ACT guard let the request in
    actor = _known_actor(str(form.get("actor") or "") or None)
    shown = _known_actor(str(form.get("filter") or "") or None) or actor  # the list's filter
    back = f"{PATH}?{urlencode({'actor': shown})}" if shown else PATH
    if actor is not None:
        count = await action.by_actor(redis, actor)
        if count:
            await _record(session, operator, action, actor, {"actor": actor, "count": count})
        message = f"{action.past} {count} dead letter(s) of {actor}."
    else:
        chosen = form.getall("one", []) or form.getall("message_id", [])
        ids = [str(value) for value in dict.fromkeys(chosen)][:MAX_SELECTION]
        if not ids:
            return done(request, "Nothing was selected.", back)
        count = 0
        for message_id in ids:
            if await action.by_ids(redis, [message_id]):
                count += 1
                await _record(session, operator, action, message_id, None)
        missing = len(ids) - count
        message = f"{action.past} {count} dead letter(s)." + (
            f" {missing} were already gone." if missing else ""
        )
    await session.commit()
    return done(request, message, back)


async def _record(
    session: AsyncSession,
    operator: Operator,
    action: Action,
    target: str,
    after: dict[str, Any] | None,
) -> None:
    await audit.record(
        session,
        actor=operator,
        action=f"dead_letter.{action.verb}",
        target_type=Target.DEAD_LETTER,
        target_id=target,
        before={"state": "dead"},
        after={"state": action.past.lower(), **(after or {})},
    )


def _known_actor(actor: str | None) -> str | None:
    if actor is not None and actor not in ACTORS:
        raise invalid_field("actor", f"one of {', '.join(ACTORS)}")
    return actor
