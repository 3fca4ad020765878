from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import msgspec

from core.audit.models import AuditEntry


class AuditEntryOut(msgspec.Struct, frozen=True, rename="camel"):
    id: int
    at: dt.datetime
    actor_user_id: uuid.UUID
    actor_email: str | None
    action: str
    target_type: str
    target_id: str
    reason: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None

    @classmethod
    def from_model(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            at=entry.at,
            actor_user_id=entry.actor_user_id,
            actor_email=entry.actor_email,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            reason=entry.reason,
            before=entry.before,
            after=entry.after,
            request_id=entry.request_id,
        )


class AuditPage(msgspec.Struct, frozen=True, rename="camel"):
    items: list[AuditEntryOut]
    next_cursor: str | None
    """Pass as `cursor` for the next (older) page; null on the last page."""
