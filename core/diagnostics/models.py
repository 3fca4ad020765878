from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UUIDPrimaryKey


class DiagnosticPing(UUIDPrimaryKey, Base):
    __tablename__ = "diagnostic_pings"

    source: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime]
    processed_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    processed_by: Mapped[str | None] = mapped_column(String(128))

    @property
    def status(self) -> str:
        return "processed" if self.processed_at else "queued"
