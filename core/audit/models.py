"""`audit_log`: one row per admin action, written in the action's own transaction.

The table is append-only: a trigger (migration 0007, the same mechanism as the points ledger's)
refuses UPDATE, DELETE and TRUNCATE whoever sends them, so nobody can edit the trail. For the
same reason `actor_user_id` is not a foreign key: deleting a user must neither be blocked by nor
rewrite the entries they made; `actor_email` keeps who it was readable.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Target(StrEnum):
    """What kind of object an entry is about; `target_id` is that object's id as text."""

    USER = "user"  # points grants and clawbacks
    SUBSCRIPTION = "subscription"
    NOTIFICATION = "notification"
    PRODUCT = "product"  # target_id is the product's product_id (its code)
    PURCHASE = "purchase"
    DEAD_LETTER = "dead_letter"  # target_id is the Redis message id, or the actor for bulk


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    actor_user_id: Mapped[uuid.UUID]
    actor_email: Mapped[str | None] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    """Dotted, domain first: `points.grant`, `subscription.refund`, `dead_letter.requeue`."""
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(500))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    request_id: Mapped[str | None] = mapped_column(String(128))
