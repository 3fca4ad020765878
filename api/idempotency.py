"""Running a write under an Idempotency-Key: claim, work, store the answer, commit, replay.

The stored answer is the exact status and bytes of the first response, so a repeat is identical;
the record and the work commit together, so a crash leaves neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.openapi.spec import OpenAPIType, Operation, Parameter, Schema
from litestar.status_codes import HTTP_202_ACCEPTED
from sqlalchemy.ext.asyncio import AsyncSession

from core.idempotency import service as idempotency
from core.idempotency.service import KEY_MAX_LENGTH, StoredResponse, UnclaimedKey

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass
class IdempotentOperation(Operation):
    """The OpenAPI operation of an idempotent write: it documents the required header, which the
    handler reads itself (`unclaimed_key`) so that a missing or malformed key gets its own
    problem code rather than a generic validation error."""

    def __post_init__(self) -> None:
        header = Parameter(
            name=IDEMPOTENCY_HEADER,
            param_in="header",
            required=True,
            description="One key per intended operation, reused for its retries; scoped to the "
            "caller. A repeat with the same body replays the first answer.",
            schema=Schema(
                type=OpenAPIType.STRING,
                min_length=1,
                max_length=KEY_MAX_LENGTH,
                pattern="^[!-~]([ -~]*[!-~])?$",  # printable ASCII; HTTP trims outer spaces
            ),
        )
        self.parameters = [*(self.parameters or []), header]


@dataclass(frozen=True)
class Outcome:
    """An idempotent call's answer, and whether it was replayed rather than done now."""

    status: int
    body: bytes
    replayed: bool

    def response(self, headers: dict[str, str] | None = None) -> Response[bytes]:
        all_headers = {**(headers or {}), REPLAYED_HEADER: str(self.replayed).lower()}
        return Response(
            self.body, status_code=self.status, media_type="application/json", headers=all_headers
        )


def unclaimed_key(
    request: Request[Any, Any, Any], user_id: uuid.UUID, body: msgspec.Struct
) -> UnclaimedKey:
    """The request's Idempotency-Key (400 when missing or malformed) and its fingerprint."""
    key = idempotency.validate_key(request.headers.get(IDEMPOTENCY_HEADER))
    fingerprint = idempotency.request_fingerprint(
        request.method, request.url.path, msgspec.json.encode(body)
    )
    return UnclaimedKey(user_id, key, fingerprint)


async def run_idempotent(
    key: UnclaimedKey,
    session: AsyncSession,
    work: Callable[[], Awaitable[tuple[int, msgspec.Struct]]],
) -> Outcome:
    """Do `work` once per (user, key, request); commits the session.

    A client error raised by `work` rolls everything back, the key included, so the client may
    correct the request and retry with the same key.
    """
    stored = await idempotency.claim(session, key.user_id, key.key, key.fingerprint)
    if stored is not None:
        await session.rollback()
        return Outcome(stored.status, stored.body, replayed=True)
    status, payload = await work()
    encoded = msgspec.json.encode(payload)
    await idempotency.remember(session, key.user_id, key.key, StoredResponse(status, encoded))
    await session.commit()
    return Outcome(status, encoded, replayed=False)


Row = TypeVar("Row")


async def submit_idempotently(
    key: UnclaimedKey,
    session: AsyncSession,
    submit: Callable[[], Awaitable[tuple[Row, bool]]],
    present: Callable[[Row], msgspec.Struct],
) -> tuple[Outcome, list[Row]]:
    """Record a submission once per key: (the 202 answer, [the row] when it needs its job).

    `submit` says whether the row needs its job: a row it created, or one it gave something new
    to work with. The caller sends that job after the commit; a replay, or a row that already
    existed unchanged, has had its job sent already.
    """
    created: list[Row] = []

    async def work() -> tuple[int, msgspec.Struct]:
        row, needs_job = await submit()
        if needs_job:
            created.append(row)
        return HTTP_202_ACCEPTED, present(row)

    outcome = await run_idempotent(key, session, work)
    return outcome, created
