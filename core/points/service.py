"""Changes to a user's points. Each call runs inside the caller's transaction and is idempotent on
(source, source id, kind): a repeated job or request finds its entry and changes nothing.
`credit`, `spend` and `claw_back` take the transaction's asyncpg connection
(`core.db.driver_transaction`, or `core.db.session_driver` under an ORM session): see
`LedgerStatements` for why.

Refund policy: when RuStore refunds or reverses a purchase whose points were partly spent, we take
back what the balance holds and record the rest as the account's debt. The balance never goes
below zero; later credits pay the debt off first (as `clawback` entries with source `debt`), so
the ledger still sums to the balance and the user cannot spend points they no longer paid for.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.repository import UserRepository
from core.audit import service as audit
from core.audit.models import Target
from core.db import session_driver, utcnow
from core.errors import ConflictError, InvalidRequestError, NotFoundError, UnprocessableError
from core.points.models import EntryKind, EntrySource, LedgerEntry, PointsAccount
from core.points.repository import LedgerStatements, PointsRepository

POINTS_LIMIT = 2**31 - 1
"""Balances, debts and entries are PostgreSQL integers: a change past this is refused with a 422
rather than failing in the database with a 500."""


class InsufficientPoints(ConflictError):
    code = "insufficient_points"


@dataclass(frozen=True)
class Change:
    """What a call did: the entries it appended (empty when it had already been applied)."""

    entries: tuple[LedgerEntry, ...]
    balance: int
    debt: int

    @property
    def applied(self) -> bool:
        return bool(self.entries)


async def credit(
    connection: asyncpg.Connection,
    user_id: uuid.UUID,
    amount: int,
    *,
    source: EntrySource,
    source_id: str,
    kind: EntryKind = EntryKind.CREDIT,
    reason: str | None = None,
) -> Change:
    """Add points (a purchase, a grant or a refunded spend), paying any debt off first."""
    _require_positive(amount)
    ledger = LedgerStatements(connection)
    account = await ledger.lock_account(user_id, utcnow())
    if await ledger.find_entry(source, source_id, kind):
        return Change((), account.balance, account.debt)
    entry = await _append(ledger, account, kind, amount, source, source_id, reason)
    entries = [entry]
    repay = min(account.debt, account.balance)
    if repay:
        account.debt -= repay
        debt_entry = await _append(
            ledger, account, EntryKind.CLAWBACK, -repay, EntrySource.DEBT, str(entry.id),
            "debt from an earlier refund repaid",
        )  # fmt: skip
        entries.append(debt_entry)
    return Change(tuple(entries), account.balance, account.debt)


async def spend(
    connection: asyncpg.Connection, user_id: uuid.UUID, amount: int, *, spend_id: str, reason: str
) -> Change:
    """Take points the user has; never drives the balance below zero."""
    _require_positive(amount)
    ledger = LedgerStatements(connection)
    account = await ledger.lock_account(user_id, utcnow())
    if await ledger.find_entry(EntrySource.SPEND, spend_id, EntryKind.SPEND):
        return Change((), account.balance, account.debt)
    if account.balance < amount:
        raise InsufficientPoints(
            f"Balance is {account.balance}, {amount} needed", balance=account.balance
        )
    entry = await _append(
        ledger, account, EntryKind.SPEND, -amount, EntrySource.SPEND, spend_id, reason
    )
    return Change((entry,), account.balance, account.debt)


async def claw_back(
    connection: asyncpg.Connection,
    user_id: uuid.UUID,
    amount: int,
    *,
    source: EntrySource,
    source_id: str,
    reason: str,
) -> Change:
    """Take back `amount`: what the balance holds now, the rest becomes debt (see module doc)."""
    _require_positive(amount)
    ledger = LedgerStatements(connection)
    account = await ledger.lock_account(user_id, utcnow())
    if await ledger.find_entry(source, source_id, EntryKind.CLAWBACK):
        return Change((), account.balance, account.debt)
    taken = min(amount, account.balance)
    _require_within_limit(account.debt + amount - taken)
    account.debt += amount - taken
    # Appended even when nothing could be taken: the entry is what makes a repeat a no-op, and
    # it records the debt this refund created.
    entry = await _append(ledger, account, EntryKind.CLAWBACK, -taken, source, source_id, reason)
    return Change((entry,), account.balance, account.debt)


async def grant(
    session: AsyncSession, user_id: uuid.UUID, amount: int, *, reason: str, actor: audit.Actor
) -> Change:
    """An admin's gift, audited; each call is a new entry (the api's Idempotency-Key guards
    repeats)."""
    connection, before = await _locked_standing(session, user_id)
    change = await credit(
        connection, user_id, amount, source=EntrySource.ADMIN, source_id=uuid.uuid4().hex,
        kind=EntryKind.GRANT, reason=reason,
    )  # fmt: skip
    await _audit(session, actor, "points.grant", user_id, amount, reason, before, change)
    return change


async def take_back(
    session: AsyncSession, user_id: uuid.UUID, amount: int, *, reason: str, actor: audit.Actor
) -> Change:
    """An admin's correction, audited, under the same debt policy as a refund."""
    connection, before = await _locked_standing(session, user_id)
    change = await claw_back(
        connection, user_id, amount, source=EntrySource.ADMIN, source_id=uuid.uuid4().hex,
        reason=reason,
    )  # fmt: skip
    await _audit(session, actor, "points.clawback", user_id, amount, reason, before, change)
    return change


async def _locked_standing(
    session: AsyncSession, user_id: uuid.UUID
) -> tuple[asyncpg.Connection, dict[str, int]]:
    """A known user's balance and debt before an admin change, under the account lock, and the
    connection of the session's transaction that holds it."""
    await _require_user(session, user_id)
    connection = await session_driver(session)
    account = await LedgerStatements(connection).lock_account(user_id, utcnow())
    return connection, {"balance": account.balance, "debt": account.debt}


async def _audit(
    session: AsyncSession,
    actor: audit.Actor,
    action: str,
    user_id: uuid.UUID,
    amount: int,
    reason: str,
    before: dict[str, int],
    change: Change,
) -> None:
    after = {
        "balance": change.balance,
        "debt": change.debt,
        "amount": amount,
        "entry_ids": [entry.id for entry in change.entries],
    }
    await audit.record(
        session, actor=actor, action=action, target_type=Target.USER, target_id=user_id,
        before=before, after=after, reason=reason,
    )  # fmt: skip


async def standing(session: AsyncSession, user_id: uuid.UUID) -> tuple[int, int]:
    """(balance, debt); a user who never had points has (0, 0)."""
    account = await PointsRepository(session).account(user_id)
    return (account.balance, account.debt) if account else (0, 0)


async def history(
    session: AsyncSession, user_id: uuid.UUID, before_id: int | None, limit: int
) -> list[LedgerEntry]:
    return await PointsRepository(session).history(user_id, before_id, limit)


async def _append(
    ledger: LedgerStatements,
    account: PointsAccount,
    kind: EntryKind,
    amount: int,
    source: EntrySource,
    source_id: str,
    reason: str | None,
) -> LedgerEntry:
    _require_within_limit(account.balance + amount)
    account.balance += amount
    entry = LedgerEntry(
        user_id=account.user_id,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        source=source,
        source_id=source_id,
        reason=reason,
        created_at=utcnow(),
    )
    return await ledger.append(entry, account)


async def _require_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """A 404 for an unknown user, rather than the foreign-key violation an insert would raise."""
    if await UserRepository(session).get(user_id) is None:
        raise NotFoundError(f"No user {user_id}")


def _require_within_limit(points: int) -> None:
    if points > POINTS_LIMIT:
        raise UnprocessableError(f"points would exceed {POINTS_LIMIT}", code="points_limit")


def _require_positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidRequestError("amount must be a positive whole number", code="invalid_amount")
