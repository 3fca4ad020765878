from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class EntryKind(StrEnum):
    CREDIT = "credit"  # a verified purchase
    SPEND = "spend"  # the user spent points
    REFUND = "refund"  # a spend given back
    GRANT = "grant"  # an admin gift
    CLAWBACK = "clawback"  # taken back: RuStore refund/reversal, an admin, or a debt repaid


class EntrySource(StrEnum):
    PURCHASE = "purchase"
    SPEND = "spend"
    ADMIN = "admin"
    DEBT = "debt"  # a credit that paid off a debt; source id = the credit's entry id


class PointsAccount(Base):
    """The balance of one user, and the debt left when a refund found the points already spent."""

    __tablename__ = "points_accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("debt >= 0", name="debt_not_negative"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(default=0)
    debt: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime]


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "kind", name="uq_ledger_entries_source_kind"),
        CheckConstraint(
            "kind IN ('credit', 'spend', 'refund', 'grant', 'clawback')", name="kind_known"
        ),
        # Only a clawback may be zero: a refund that found nothing left to take (all became debt).
        CheckConstraint("amount <> 0 OR kind = 'clawback'", name="amount_not_zero"),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index("ix_ledger_entries_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int]
    """Signed: positive adds to the balance, negative takes from it."""
    balance_after: Mapped[int]
    source: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime]
