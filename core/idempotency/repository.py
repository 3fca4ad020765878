from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast

import asyncpg
from sqlalchemy import Table, delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from core.idempotency.models import IdempotencyRecord

# The two statements on every write request address the table, not the mapped class: the ORM's
# bulk-persistence path costs about 150 µs of CPU per statement that nothing here needs.
RECORDS = cast(Table, IdempotencyRecord.__table__)


class KeyBusy(Exception):
    """Another transaction holds the same key and has not committed within the lock timeout."""


@contextmanager
def lock_waits_as_busy() -> Iterator[None]:
    """KeyBusy for a statement that ran out of lock_timeout waiting on another holder of a key."""
    try:
        yield
    except asyncpg.LockNotAvailableError as exc:  # a statement run on asyncpg directly
        raise KeyBusy from exc
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise KeyBusy from exc
        raise


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, user_id: uuid.UUID, key: str, request_hash: str, now: dt.datetime, ttl: dt.timedelta
    ) -> IdempotencyRecord | None:
        """Insert the key in this transaction (taking over an expired one); the existing record
        when it is already there.

        A concurrent request inserting the same key makes PostgreSQL wait for that transaction;
        the connection's `lock_timeout` (DATABASE_LOCK_TIMEOUT) bounds the wait, after which the
        caller answers "in progress".
        """
        fresh = {
            "request_hash": request_hash,
            "response_status": 0,
            "response_body": b"",
            "created_at": now,
            "expires_at": now + ttl,
        }
        statement = (
            insert(RECORDS)
            .values(user_id=user_id, key=key, **fresh)
            .on_conflict_do_update(
                index_elements=[RECORDS.c.user_id, RECORDS.c.key],
                set_=fresh,
                where=RECORDS.c.expires_at < now,
            )
            .returning(RECORDS.c.key)
        )
        with lock_waits_as_busy():
            inserted = (await self.session.execute(statement)).scalar_one_or_none()
        if inserted is not None:
            return None
        existing = await self.session.execute(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
            )
        )
        return existing.scalar_one()

    async def store_response(self, user_id: uuid.UUID, key: str, status: int, body: bytes) -> None:
        await self.session.execute(
            update(RECORDS)
            .where(RECORDS.c.user_id == user_id, RECORDS.c.key == key)
            .values(response_status=status, response_body=body)
        )

    async def prune(self, now: dt.datetime, limit: int) -> int:
        """Delete up to `limit` expired keys; returns how many went."""
        expired = (
            select(IdempotencyRecord.user_id, IdempotencyRecord.key)
            .where(IdempotencyRecord.expires_at < now)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            delete(IdempotencyRecord).where(
                tuple_(IdempotencyRecord.user_id, IdempotencyRecord.key).in_(expired)
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
