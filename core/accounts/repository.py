from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts.models import RefreshToken, User
from core.accounts.ownership import OwnedRepository


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert(self, email: str, password_hash: str, roles: list[str]) -> User | None:
        """Insert a user; None when the email is taken, even by a concurrent registration."""
        statement = (
            insert(User)
            .values(id=uuid.uuid4(), email=email, password_hash=password_hash, roles=roles)
            .on_conflict_do_nothing(index_elements=[User.email])
            .returning(User)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def set_password_hash(self, user: User, password_hash: str) -> None:
        user.password_hash = password_hash
        await self.session.flush()

    async def set_email(self, user: User, email: str) -> bool:
        """Change the email; False when another account has it."""
        try:
            async with self.session.begin_nested():
                user.email = email
                await self.session.flush()
        except IntegrityError:
            return False
        return True


class RefreshTokenRepository:
    """Lookups by token hash: the token itself is the credential, so there is no owner yet."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: RefreshToken) -> RefreshToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def get_by_hash_for_update(self, token_hash: str) -> RefreshToken | None:
        """Lock the row so two concurrent refreshes with one token cannot both rotate it."""
        result = await self.session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash).with_for_update()
        )
        return result.scalar_one_or_none()

    async def mark_replaced(
        self, token: RefreshToken, successor: uuid.UUID, at: dt.datetime
    ) -> None:
        token.revoked_at = at
        token.replaced_by = successor
        await self.session.flush()

    async def revoke_family(self, family_id: uuid.UUID, at: dt.datetime) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=at)
        )


class UserRefreshTokenRepository(OwnedRepository[RefreshToken]):
    """One user's refresh tokens."""

    model = RefreshToken
    noun = "refresh token"

    async def find_by_hash(self, token_hash: str) -> RefreshToken | None:
        result = await self.session.execute(
            self.owned().where(RefreshToken.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def revoke_all(self, at: dt.datetime, *, except_family: uuid.UUID | None) -> None:
        statement = update(RefreshToken).where(
            RefreshToken.user_id == self.owner_id, RefreshToken.revoked_at.is_(None)
        )
        if except_family is not None:
            statement = statement.where(RefreshToken.family_id != except_family)
        await self.session.execute(statement.values(revoked_at=at))
