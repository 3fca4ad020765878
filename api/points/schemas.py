from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec

from core.points.models import LedgerEntry

Amount = Annotated[int, msgspec.Meta(gt=0, le=1_000_000_000)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


class BalanceOut(msgspec.Struct, frozen=True, rename="camel"):
    balance: int
    debt: int
    """Points owed after a refund found them already spent; later credits pay it off first."""


class SpendIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    amount: Amount
    reason: Reason


class AdjustIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """An admin grant or clawback; the reason is kept in the ledger and the audit trail."""

    amount: Amount
    reason: Reason


class LedgerEntryOut(msgspec.Struct, frozen=True, rename="camel"):
    id: int
    type: str
    amount: int
    balance_after: int
    reference: str
    reason: str | None
    created_at: dt.datetime

    @classmethod
    def from_model(cls, entry: LedgerEntry) -> LedgerEntryOut:
        return cls(
            id=entry.id,
            type=entry.kind,
            amount=entry.amount,
            balance_after=entry.balance_after,
            reference=f"{entry.source}:{entry.source_id}",
            reason=entry.reason,
            created_at=entry.created_at,
        )


class HistoryPage(msgspec.Struct, frozen=True, rename="camel"):
    items: list[LedgerEntryOut]
    next_cursor: str | None
