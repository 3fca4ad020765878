from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec

from core.diagnostics.models import DiagnosticPing


class PingIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class PingOut(msgspec.Struct, frozen=True, rename="camel"):
    id: uuid.UUID
    status: str
    source: str
    note: str | None
    request_id: str | None
    created_at: dt.datetime
    processed_at: dt.datetime | None
    processed_by: str | None
    status_url: str

    @classmethod
    def from_model(cls, ping: DiagnosticPing) -> PingOut:
        return cls(
            id=ping.id,
            status=ping.status,
            source=ping.source,
            note=ping.note,
            request_id=ping.request_id,
            created_at=ping.created_at,
            processed_at=ping.processed_at,
            processed_by=ping.processed_by,
            status_url=f"/api/diagnostics/pings/{ping.id}",
        )
