from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.errors import ConflictError, InvalidRequestError, UnprocessableError
from core.idempotency.repository import IdempotencyRepository, KeyBusy

KEY_MAX_LENGTH = 255
KEY_TTL = dt.timedelta(hours=48)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes


@dataclass(frozen=True)
class UnclaimedKey:
    """A valid Idempotency-Key of a user and the fingerprint of the request made under it."""

    user_id: uuid.UUID
    key: str
    fingerprint: str


@dataclass(frozen=True)
class KeyClaim:
    """A key to claim together with the answer to store under it, for a write that does both in
    one statement (a new purchase's submission, `PurchaseStatements.submit_first` in
    core/purchases/repository.py)."""

    key: UnclaimedKey
    response: StoredResponse
    claimed_at: dt.datetime

    @property
    def expires_at(self) -> dt.datetime:
        return self.claimed_at + KEY_TTL


@contextmanager
def refusing_busy_keys() -> Iterator[None]:
    """409 for a request whose key another request holds past the lock timeout."""
    try:
        yield
    except KeyBusy:
        raise ConflictError(
            "A request with this Idempotency-Key is still in progress; retry shortly",
            code="idempotency_key_in_progress",
        ) from None


def validate_key(key: str | None) -> str:
    """The header value, or a 400 that says what is wrong with it."""
    if key is None:
        raise InvalidRequestError(
            "This request needs an Idempotency-Key header", code="idempotency_key_required"
        )
    if not key or len(key) > KEY_MAX_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise InvalidRequestError(
            f"Idempotency-Key must be 1 to {KEY_MAX_LENGTH} printable ASCII characters",
            code="idempotency_key_invalid",
        )
    return key


def request_fingerprint(method: str, path: str, canonical_body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical_body])).hexdigest()


async def claim(
    session: AsyncSession, user_id: uuid.UUID, key: str, fingerprint: str
) -> StoredResponse | None:
    """Claim `key` in the caller's transaction: None means "go ahead and do the work".

    A stored answer comes back for replay; another body under the same key is 422; a request
    still running under the key is 409.
    """
    with refusing_busy_keys():
        record = await IdempotencyRepository(session).claim(
            user_id, key, fingerprint, utcnow(), KEY_TTL
        )
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise UnprocessableError(
            "This Idempotency-Key was used with a different request",
            code="idempotency_key_reused",
        )
    return StoredResponse(record.response_status, record.response_body)


async def remember(
    session: AsyncSession, user_id: uuid.UUID, key: str, response: StoredResponse
) -> None:
    """Store the answer in the same transaction as the work, so both commit or neither does."""
    await IdempotencyRepository(session).store_response(
        user_id, key, response.status, response.body
    )


async def prune_expired(session: AsyncSession, limit: int = 5_000) -> int:
    return await IdempotencyRepository(session).prune(utcnow(), limit)
