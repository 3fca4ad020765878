"""The one-statement steps on the driver connection (`PurchaseStatements`): the worker's, and
the usual submission's."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.idempotency.service import StoredResponse, UnclaimedKey
from core.purchases import service
from core.purchases.models import OPEN_STATES, Purchase
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
    invoice_id = _new_invoice_id()
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


async def test_first_submissions_made_together_are_written_by_one_transaction(
    engine: AsyncEngine, user_account: Account, records: Records, catalogue: None
) -> None:
    """Submissions made at the same moment share one statement. One whose key is in use or whose
    product cannot be bought claims nothing and is told to take the general path; the rest are
    written together, each with its key."""
    user_id = uuid.UUID(user_account.user_id)
    invoice_id = _new_invoice_id()
    used_key = uuid.uuid4().hex
    assert await _submit_first(user_id, _submission(invoice_id, "coins_100"), engine, used_key)

    first_submissions = service.FirstSubmissions(engine)
    results = await asyncio.gather(
        *(
            _submit_first(user_id, _submission(invoice_id + n, "coins_100"), first_submissions)
            for n in (1, 2, 3)
        ),
        _submit_first(
            user_id, _submission(invoice_id + 4, "coins_100"), first_submissions, used_key
        ),
        _submit_first(user_id, _submission(invoice_id + 5, "no_such_product"), first_submissions),
    )

    assert [result is not None for result in results] == [True, True, True, False, False]
    assert await records.idempotency_keys(user_account.user_id) == 4
    assert await _transactions_of(engine, [invoice_id + n for n in (1, 2, 3)]) == 1


async def test_a_batch_with_a_purchase_already_reported_is_written_one_by_one(
    engine: AsyncEngine, user_account: Account, records: Records, catalogue: None
) -> None:
    """The shared statement undoes itself when a new key comes with a purchase already stored;
    each submission is then written alone, so only that one is sent to the general path."""
    user_id = uuid.UUID(user_account.user_id)
    invoice_id = _new_invoice_id()
    assert await _submit_first(user_id, _submission(invoice_id, "coins_100"), engine)

    first_submissions = service.FirstSubmissions(engine)
    results = await asyncio.gather(
        _submit_first(user_id, _submission(invoice_id + 1, "coins_100"), first_submissions),
        _submit_first(user_id, _submission(invoice_id, "coins_100"), first_submissions),
        _submit_first(user_id, _submission(invoice_id + 2, "coins_100"), first_submissions),
    )

    assert [result is not None for result in results] == [True, False, True]
    assert await records.idempotency_keys(user_account.user_id) == 3
    assert await _transactions_of(engine, [invoice_id + 1, invoice_id + 2]) == 2


async def test_one_key_submitted_several_times_together_stores_the_answer_of_the_purchase_written(
    engine: AsyncEngine, user_account: Account, records: Records, catalogue: None
) -> None:
    """A client's retries racing each other land in one batch with one key: one is written, and
    the answer stored under the key is that one's, naming the purchase that exists (each try
    has a purchase id of its own until one is stored)."""
    user_id = uuid.UUID(user_account.user_id)
    key = UnclaimedKey(user_id, uuid.uuid4().hex, fingerprint="test")
    submission = _submission(_new_invoice_id(), "coins_100")
    first_submissions = service.FirstSubmissions(engine)

    def naming_the_purchase(purchase: Purchase) -> StoredResponse:
        return StoredResponse(202, str(purchase.id).encode())

    results = await asyncio.gather(
        *(
            first_submissions.submit(key, submission, ONE_TIME_TYPES, naming_the_purchase)
            for _ in range(5)
        )
    )

    written = [result for result in results if result is not None]
    assert len(written) == 1
    purchase, answer = written[0]
    stored = await records.idempotency_key(user_account.user_id, key.key)
    assert stored.response_body == answer.body == str(purchase.id).encode()
    assert [p.id for p in await records.purchases_of_user(user_account.user_id)] == [purchase.id]


async def _submit_first(
    user_id: uuid.UUID,
    submission: Submission,
    to: AsyncEngine | service.FirstSubmissions,
    key: str | None = None,
) -> object | None:
    first_submissions = service.FirstSubmissions(to) if isinstance(to, AsyncEngine) else to
    unclaimed = UnclaimedKey(user_id, key or uuid.uuid4().hex, fingerprint="test")
    answer = StoredResponse(202, b"{}")
    return await first_submissions.submit(unclaimed, submission, ONE_TIME_TYPES, lambda _: answer)


async def _transactions_of(engine: AsyncEngine, invoice_ids: list[int]) -> int:
    """How many transactions wrote these purchases (rows one transaction wrote share its xmin)."""
    async with engine.connect() as connection:
        count = await connection.scalar(
            text("SELECT count(DISTINCT xmin::text) FROM purchases WHERE invoice_id = ANY(:ids)"),
            {"ids": invoice_ids},
        )
    return int(count or 0)


def _new_invoice_id() -> int:
    return 7_000_000_000 + uuid.uuid4().int % 1_000_000_000


def _submission(invoice_id: int, product_id: str) -> Submission:
    return Submission(invoice_id, f"purchase-{invoice_id}", product_id, None, sandbox=False)
