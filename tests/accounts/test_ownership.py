"""`OwnedRepository`: another user's row reads exactly like a row that does not exist."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.repository import UserRefreshTokenRepository
from core.accounts.tokens import hash_refresh_token
from core.errors import NotFoundError
from tests.fixtures.accounts import Account


async def owned_token_id(session: AsyncSession, account: Account) -> uuid.UUID:
    repository = UserRefreshTokenRepository(session, uuid.UUID(account.user_id))
    token = await repository.find_by_hash(hash_refresh_token(account.refresh_token))
    assert token is not None
    return token.id


async def test_the_owner_reads_its_row(db_session: AsyncSession, user_account: Account) -> None:
    token_id = await owned_token_id(db_session, user_account)
    repository = UserRefreshTokenRepository(db_session, uuid.UUID(user_account.user_id))

    assert (await repository.get(token_id)).id == token_id


async def test_a_foreign_id_is_the_same_404_as_an_unknown_one(
    db_session: AsyncSession, user_account: Account, admin_account: Account
) -> None:
    foreign_id = await owned_token_id(db_session, admin_account)
    repository = UserRefreshTokenRepository(db_session, uuid.UUID(user_account.user_id))

    with pytest.raises(NotFoundError) as foreign:
        await repository.get(foreign_id)
    unknown_id = uuid.uuid4()
    with pytest.raises(NotFoundError) as unknown:
        await repository.get(unknown_id)

    assert foreign.value.detail == f"No refresh token {foreign_id}"
    assert unknown.value.detail == f"No refresh token {unknown_id}"
    by_hash = await repository.find_by_hash(hash_refresh_token(admin_account.refresh_token))
    assert by_hash is None
