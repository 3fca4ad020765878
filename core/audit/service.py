"""Writing and reading the audit log.

    async def record(session, *, actor: Actor, action: str, target_type: str,
                     target_id: str | uuid.UUID, before: Mapping[str, Any] | None,
                     after: Mapping[str, Any] | None, reason: str | None = None) -> AuditEntry
    async def list_entries(session, *, target_type: str | None = None,
                           target_id: str | None = None, before_id: int | None = None,
                           limit: int = 50) -> list[AuditEntry]

`record` runs inside the caller's transaction, next to the change it describes: the entry and
the change commit together or not at all, so the log never claims an action that did not happen
and never misses one that did. Every admin action calls it from its domain service (points,
subscriptions, notifications, catalogue), so the JSON admin api and the dashboard both leave the
same trail. `before`/`after` are whatever describes the change best, made JSON-safe here
(datetimes and UUIDs become strings).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from core.audit.models import AuditEntry
from core.audit.repository import AuditRepository
from core.logging import current_request_id

REASON_MAX = 500


class Actor(Protocol):
    """Who acts: any principal with a user id (the api's `AccessClaims`, a dashboard session)."""

    @property
    def user_id(self) -> uuid.UUID: ...


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | uuid.UUID,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (the caller commits)."""
    return await AuditRepository(session).append(
        actor.user_id,
        {
            "action": action,
            "target_type": target_type,
            "target_id": str(target_id),
            "reason": reason[:REASON_MAX] if reason else None,
            "before": _json(before),
            "after": _json(after),
            "request_id": current_request_id(),
        },
    )


async def list_entries(
    session: AsyncSession,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Newest first; `before_id` is the cursor (the last id of the previous page)."""
    return await AuditRepository(session).page(target_type, target_id, before_id, limit)


def _json(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else msgspec.to_builtins(dict(value))
