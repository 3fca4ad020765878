"""Registration, login, token rotation and account changes.

Nothing here commits. One exception to "the caller rolls back on error": when a rotated refresh
token is replayed, `refresh` revokes its family and raises `RefreshTokenReusedError`, and the
caller must commit before answering 401, or the revocation (the point of reuse detection) is lost.
"""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import credentials, tokens
from core.accounts.models import RefreshToken, Role, User
from core.accounts.repository import (
    RefreshTokenRepository,
    UserRefreshTokenRepository,
    UserRepository,
)
from core.accounts.throttle import LoginThrottle
from core.db import utcnow
from core.errors import ConflictError, ForbiddenError, InvalidRequestError, UnauthorizedError
from core.points import service as points
from core.settings import Settings
from core.subscriptions import service as subscriptions

log = structlog.get_logger(__name__)

INVALID_CREDENTIALS = "Email or password is wrong."
REFRESH_REJECTED = "The refresh token is invalid, expired or revoked."


class RefreshTokenReusedError(UnauthorizedError):
    code = "refresh_token_reused"


class IssuedTokens(msgspec.Struct, frozen=True):
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


class UserChanges(msgspec.Struct, frozen=True, kw_only=True):
    current_password: str
    email: str | None = None
    new_password: str | None = None
    keep_refresh_token: str | None = None  # the caller's own session survives a password change


async def create_user(session: AsyncSession, email: str, password: str, roles: list[Role]) -> User:
    email = credentials.normalize_email(email)
    credentials.check_password_policy(password, email)
    password_hash = await credentials.hash_password(password)
    user = await UserRepository(session).insert(email, password_hash, [str(r) for r in roles])
    if user is None:
        raise _email_taken()
    log.info("accounts.user.created", user_id=str(user.id), roles=user.roles)
    return user


async def register(
    session: AsyncSession, settings: Settings, email: str, password: str, device_id: str | None
) -> IssuedTokens:
    user = await create_user(session, email, password, [Role.USER])
    issued, _ = await _issue(session, settings, user, uuid.uuid4(), device_id)
    return issued


async def login(
    session: AsyncSession,
    settings: Settings,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    address: str,
    device_id: str | None = None,
) -> IssuedTokens:
    user = await authenticate(session, throttle, email=email, password=password, address=address)
    issued, _ = await _issue(session, settings, user, uuid.uuid4(), device_id)
    return issued


async def authenticate(
    session: AsyncSession, throttle: LoginThrottle, *, email: str, password: str, address: str
) -> User:
    """Check the password under the login throttle, for the api's tokens and the dashboard's
    session alike; wrong email and wrong password answer alike, in about the same time."""
    email = credentials.normalize_email(email)
    await throttle.ensure_allowed(email, address)
    user = await UserRepository(session).get_by_email(email)
    if user is None:
        await credentials.burn_verification_time(password)
    if user is None or not await _password_matches(session, user, password):
        await throttle.record_failure(email, address)
        log.info("accounts.login.failed", address=address)
        raise UnauthorizedError(INVALID_CREDENTIALS, code="invalid_credentials")
    await throttle.clear(email)
    return user


async def _password_matches(session: AsyncSession, user: User, password: str) -> bool:
    if not await credentials.verify_password(user.password_hash, password):
        return False
    if credentials.needs_rehash(user.password_hash):
        new_hash = await credentials.hash_password(password)
        await UserRepository(session).set_password_hash(user, new_hash)
    return True


async def refresh(session: AsyncSession, settings: Settings, refresh_token: str) -> IssuedTokens:
    """Rotate: the presented token is spent and a new one of the same family is issued."""
    tokens_repo = RefreshTokenRepository(session)
    now = utcnow()
    current = await tokens_repo.get_by_hash_for_update(tokens.hash_refresh_token(refresh_token))
    if current is not None and current.replaced_by is not None:
        await tokens_repo.revoke_family(current.family_id, now)
        log.warning("accounts.refresh_token.reused", family_id=str(current.family_id))
        raise RefreshTokenReusedError(REFRESH_REJECTED)
    if current is None or current.revoked_at is not None or current.expires_at <= now:
        raise UnauthorizedError(REFRESH_REJECTED, code="invalid_refresh_token")
    user = await get_user(session, current.user_id)
    issued, successor = await _issue(session, settings, user, current.family_id, current.device_id)
    await tokens_repo.mark_replaced(current, successor.id, now)
    return issued


async def logout(session: AsyncSession, refresh_token: str) -> None:
    """Revoke the token's whole family; an unknown token is not an error (logout is idempotent)."""
    tokens_repo = RefreshTokenRepository(session)
    token = await tokens_repo.get_by_hash_for_update(tokens.hash_refresh_token(refresh_token))
    if token is not None:
        await tokens_repo.revoke_family(token.family_id, utcnow())


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    """The caller's account; a valid token for a deleted account is no longer a credential."""
    user = await UserRepository(session).get(user_id)
    if user is None:
        raise UnauthorizedError("The account no longer exists.", code="invalid_token")
    return user


async def points_balance(session: AsyncSession, user_id: uuid.UUID) -> int:
    """The spendable balance the ledger holds (a debt is shown by the points api, not here)."""
    balance, _debt = await points.standing(session, user_id)
    return balance


async def subscription_summary(
    session: AsyncSession, user_id: uuid.UUID
) -> subscriptions.Current | None:
    """The subscription the profile shows: the best one giving access, else the latest."""
    return await subscriptions.summary(session, user_id)


async def update_user(
    session: AsyncSession,
    throttle: LoginThrottle,
    user_id: uuid.UUID,
    changes: UserChanges,
    address: str,
) -> User:
    """Change email and/or password after re-checking the current password.

    A wrong current password counts as a failed login, so a stolen access token cannot be used to
    guess the password. A new password revokes every other session.
    """
    user = await get_user(session, user_id)
    if changes.email is None and changes.new_password is None:
        raise InvalidRequestError("Nothing to change: give `email` or `newPassword`.")
    await throttle.ensure_allowed(user.email, address)
    if not await credentials.verify_password(user.password_hash, changes.current_password):
        await throttle.record_failure(user.email, address)
        raise ForbiddenError("The current password is wrong.", code="wrong_password")
    if changes.email is not None:
        await _change_email(session, user, changes.email)
    if changes.new_password is not None:
        await _change_password(session, user, changes.new_password, changes.keep_refresh_token)
    return user


async def _change_email(session: AsyncSession, user: User, email: str) -> None:
    email = credentials.normalize_email(email)
    if not await UserRepository(session).set_email(user, email):
        raise _email_taken()


async def _change_password(
    session: AsyncSession, user: User, password: str, keep_refresh_token: str | None
) -> None:
    credentials.check_password_policy(password, user.email, field="newPassword")
    await UserRepository(session).set_password_hash(user, await credentials.hash_password(password))
    owned_tokens = UserRefreshTokenRepository(session, user.id)
    kept = None
    if keep_refresh_token is not None:
        kept = await owned_tokens.find_by_hash(tokens.hash_refresh_token(keep_refresh_token))
    await owned_tokens.revoke_all(utcnow(), except_family=kept.family_id if kept else None)
    log.info("accounts.password.changed", user_id=str(user.id), kept_session=kept is not None)


def _email_taken() -> ConflictError:
    return ConflictError("An account with this email already exists.", code="email_taken")


async def _issue(
    session: AsyncSession,
    settings: Settings,
    user: User,
    family_id: uuid.UUID,
    device_id: str | None,
) -> tuple[IssuedTokens, RefreshToken]:
    """A new access token and a new refresh token in `family_id` (a new family per login)."""
    now = utcnow()
    refresh_token = tokens.new_refresh_token()
    stored = await RefreshTokenRepository(session).add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=tokens.hash_refresh_token(refresh_token),
            device_id=device_id,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    issued = IssuedTokens(
        user=user,
        access_token=tokens.issue_access_token(settings, user.id, user.roles, now),
        refresh_token=refresh_token,
        expires_in=settings.access_token_ttl_seconds,
    )
    return issued, stored
