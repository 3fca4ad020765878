"""Scenario 22: random credits, spends, refunds, grants, duplicate deliveries and crash-redeliveries
against a plain Python model of the policy; after every step the database must equal the model.

The machine drives core.points.service with real sessions and commits on its own event loop (the
service is async, Hypothesis is not). A "crash" runs an operation in a transaction that is rolled
back, as when a worker dies before its commit, and then delivers it again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from core.accounts.repository import UserRepository
from core.db import create_engine, create_sessionmaker, session_driver
from core.points import service as points
from core.points.models import EntryKind, EntrySource
from core.points.service import InsufficientPoints
from core.settings import Settings
from tests.fixtures.accounts import unique_email
from tests.fixtures.points import Audit, read_audit

AMOUNTS = st.integers(min_value=1, max_value=300)
Operation = Callable[[asyncpg.Connection], Awaitable[points.Change]]


@dataclass
class LedgerModel:
    """The policy of core/points/service.py in a few lines of arithmetic, without a database."""

    balance: int = 0
    debt: int = 0
    entries: int = 0
    done: set[tuple[str, str, str]] = field(default_factory=set)

    def credit(self, key: tuple[str, str, str], amount: int) -> None:
        if self._once(key):
            self.balance += amount
            repay = min(self.debt, self.balance)
            self.balance -= repay
            self.debt -= repay
            self.entries += 2 if repay else 1

    def spend(self, key: tuple[str, str, str], amount: int) -> bool:
        """False when the balance is too low (and then nothing is recorded)."""
        if key in self.done:
            return True
        if amount > self.balance:
            return False
        self._once(key)
        self.balance -= amount
        self.entries += 1
        return True

    def claw_back(self, key: tuple[str, str, str], amount: int) -> None:
        if self._once(key):
            taken = min(amount, self.balance)
            self.balance -= taken
            self.debt += amount - taken
            self.entries += 1

    def _once(self, key: tuple[str, str, str]) -> bool:
        """True the first time `key` is seen: the ledger's unique (source, source id, kind)."""
        if key in self.done:
            return False
        self.done.add(key)
        return True


class LedgerMachine(RuleBasedStateMachine):
    purchases = Bundle("purchases")
    spends = Bundle("spends")

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.engine = create_engine(settings)
        self.sessions = create_sessionmaker(self.engine)
        self.user_id = self.runner.run(self._new_user())
        self.model = LedgerModel()

    async def _new_user(self) -> uuid.UUID:
        async with self.sessions() as session:
            user = await UserRepository(session).insert(unique_email(), "not-a-hash", ["user"])
            await session.commit()
        assert user is not None
        return user.id

    def teardown(self) -> None:
        self.runner.run(self.engine.dispose())
        self.runner.close()

    def _deliver(self, operation: Operation, crash: bool) -> points.Change:
        """Run `operation` and commit; with `crash`, first run it once and roll that back."""

        async def run() -> points.Change:
            if crash:
                async with self.sessions() as session:
                    with suppress(InsufficientPoints):
                        await operation(await session_driver(session))
                    await session.rollback()
            async with self.sessions() as session:
                change = await operation(await session_driver(session))
                await session.commit()
            return change

        change = self.runner.run(run())
        assert (change.balance, change.debt) == (self.model.balance, self.model.debt)
        return change

    def _credit(self, purchase: tuple[str, int], crash: bool) -> None:
        purchase_id, amount = purchase
        self.model.credit((EntrySource.PURCHASE, purchase_id, EntryKind.CREDIT), amount)
        self._deliver(
            partial(
                points.credit, user_id=self.user_id, amount=amount,
                source=EntrySource.PURCHASE, source_id=purchase_id,
            ),
            crash,
        )  # fmt: skip

    @rule(target=purchases, amount=AMOUNTS, crash=st.booleans())
    def credit_purchase(self, amount: int, crash: bool) -> tuple[str, int]:
        purchase = (uuid.uuid4().hex, amount)
        self._credit(purchase, crash)
        return purchase

    @rule(purchase=purchases, crash=st.booleans())
    def redeliver_credit(self, purchase: tuple[str, int], crash: bool) -> None:
        self._credit(purchase, crash)

    @rule(purchase=purchases, crash=st.booleans())
    def refund_purchase(self, purchase: tuple[str, int], crash: bool) -> None:
        purchase_id, amount = purchase
        self.model.claw_back((EntrySource.PURCHASE, purchase_id, EntryKind.CLAWBACK), amount)
        self._deliver(
            partial(
                points.claw_back, user_id=self.user_id, amount=amount,
                source=EntrySource.PURCHASE, source_id=purchase_id, reason="refunded",
            ),
            crash,
        )  # fmt: skip

    def _spend(self, spend: tuple[str, int], crash: bool) -> None:
        spend_id, amount = spend
        affordable = self.model.spend((EntrySource.SPEND, spend_id, EntryKind.SPEND), amount)
        operation = partial(
            points.spend, user_id=self.user_id, amount=amount, spend_id=spend_id, reason="shop"
        )
        if affordable:
            self._deliver(operation, crash)
        else:
            with pytest.raises(InsufficientPoints):
                self._deliver(operation, crash)

    @rule(target=spends, amount=AMOUNTS, crash=st.booleans())
    def spend(self, amount: int, crash: bool) -> tuple[str, int]:
        spend = (uuid.uuid4().hex, amount)
        self._spend(spend, crash)
        return spend

    @rule(target=spends, extra=AMOUNTS, crash=st.booleans())
    def overspend(self, extra: int, crash: bool) -> tuple[str, int]:
        spend = (uuid.uuid4().hex, self.model.balance + extra)
        self._spend(spend, crash)
        return spend

    @rule(spend=spends, crash=st.booleans())
    def redeliver_spend(self, spend: tuple[str, int], crash: bool) -> None:
        self._spend(spend, crash)

    @rule(amount=AMOUNTS, crash=st.booleans())
    def admin_grant(self, amount: int, crash: bool) -> None:
        grant_id = uuid.uuid4().hex
        self.model.credit((EntrySource.ADMIN, grant_id, EntryKind.GRANT), amount)
        self._deliver(
            partial(
                points.credit, user_id=self.user_id, amount=amount, source=EntrySource.ADMIN,
                source_id=grant_id, kind=EntryKind.GRANT, reason="gift",
            ),
            crash,
        )  # fmt: skip

    @invariant()
    def database_equals_model(self) -> None:
        async def read() -> Audit:
            async with self.sessions() as session:
                return await read_audit(session, self.user_id)

        audit = self.runner.run(read())
        audit.assert_consistent()
        expected = (self.model.balance, self.model.debt, self.model.entries)
        assert (audit.balance, audit.debt, audit.entries) == expected


def test_ledger_matches_the_model(settings: Settings) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(settings),  # type: ignore[arg-type]  # any factory will do
        settings=hypothesis_settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
