"""The pipeline's one-statement steps on the driver connection (`PurchaseStatements`)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from core.purchases.models import OPEN_STATES
from core.purchases.repository import purchase_statements


async def test_a_transition_refuses_a_name_that_is_not_a_column(engine: AsyncEngine) -> None:
    """The UPDATE is built from the names it is given, so only checked column names reach it."""
    async with purchase_statements(engine) as statements:
        with pytest.raises(ValueError, match="no column"):
            await statements.transition(uuid.uuid4(), OPEN_STATES, **{"state = 'x'; --": 1})
