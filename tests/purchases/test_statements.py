"""The one-statement steps on the driver connection (`PurchaseStatements`): the worker's, and
the usual submission's."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.idempotency.service import StoredResponse, UnclaimedKey
from core.purchases import service
from core.purchases.models import OPEN_STATES
from core.purchases.repository import purchase_statements
from core.purchases.service import ONE_TIME_TYPES, Submission
from tests.fixtures.accounts import Account
from tests.fixtures.purchases import Records


async def test_a_transition_refuses_a_name_that_is_not_a_column(engine: AsyncEngine) -> None:
    """The UPDATE is built from the names it is given, so only checked column names reach it."""
    async with purchase_statements(engine) as statements:
        with pytest.raises(ValueError, match="no column"):
            await statements.transition(uuid.uuid4(), OPEN_STATES, **{"state = 'x'; --": 1})


async def test_a_first_submission_that_inserts_no_purchase_claims_no_key(
    engine: AsyncEngine, user_account: Account, records: Records, catalogue: None
) -> None:
    """One statement claims the key and inserts the purchase, committing alone. When the key is
    new but the purchase is not (already reported, or an unknown product), the key must not stay
    claimed with an answer for a purchase that was never stored: the statement undoes itself."""
    user_id = uuid.UUID(user_account.user_id)
    invoice_id = 7_000_000_000 + uuid.uuid4().int % 1_000_000_000
    assert await _submit_first(user_id, _submission(invoice_id, "coins_100"), engine) is not None
    assert await records.idempotency_keys(user_account.user_id) == 1

    already_reported = _submission(invoice_id, "coins_100")
    unknown_product = _submission(invoice_id + 1, "no_such_product")
    for submission in (already_reported, unknown_product):
        assert await _submit_first(user_id, submission, engine) is None

    assert await records.idempotency_keys(user_account.user_id) == 1
    assert [p.product_id for p in await records.purchases_of_user(user_account.user_id)] == [
        "coins_100"
    ]


async def _submit_first(
    user_id: uuid.UUID, submission: Submission, engine: AsyncEngine
) -> object | None:
    key = UnclaimedKey(user_id, uuid.uuid4().hex, fingerprint="test")
    answer = StoredResponse(202, b"{}")
    return await service.submit_first(engine, key, submission, ONE_TIME_TYPES, lambda _: answer)


def _submission(invoice_id: int, product_id: str) -> Submission:
    return Submission(invoice_id, f"purchase-{invoice_id}", product_id, None, sandbox=False)
