"""Request and response bodies of /api/auth and /api/user.

Request structs forbid unknown fields, so `{"roles": ["admin"]}` in a register body is a 400, not a
silently ignored attempt. Lengths are capped here so nothing oversized reaches argon2; the password
policy itself lives in `core.accounts.credentials`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from api.subscriptions.schemas import StateOut
from core.accounts.credentials import EMAIL_MAX_LENGTH, PASSWORD_MAX_LENGTH
from core.accounts.models import User
from core.accounts.service import IssuedTokens
from core.subscriptions.service import Current

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=EMAIL_MAX_LENGTH)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
OpaqueToken = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class RegisterIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    email: Email
    password: Password
    device_id: DeviceId | None = None


class LoginIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    email: Email
    password: Password
    device_id: DeviceId | None = None


class RefreshIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    refresh_token: OpaqueToken


class UpdateUserIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel"):
    """`refreshToken` (optional) is the caller's own: its session survives a password change."""

    current_password: Password
    email: Email | None = None
    new_password: Password | None = None
    refresh_token: OpaqueToken | None = None


class UserOut(msgspec.Struct, frozen=True, rename="camel"):
    user_id: uuid.UUID
    email: str
    roles: list[str]

    @classmethod
    def from_model(cls, user: User) -> UserOut:
        return cls(user_id=user.id, email=user.email, roles=sorted(user.roles))


class TokensOut(msgspec.Struct, frozen=True, rename="camel"):
    access_token: str
    refresh_token: str
    expires_in: int
    user: UserOut
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret

    @classmethod
    def from_issued(cls, issued: IssuedTokens) -> TokensOut:
        return cls(
            access_token=issued.access_token,
            refresh_token=issued.refresh_token,
            expires_in=issued.expires_in,
            user=UserOut.from_model(issued.user),
        )


class ProfileOut(msgspec.Struct, frozen=True, rename="camel"):
    """`subscription`: the best subscription giving access now, else the latest; null if none."""

    user_id: uuid.UUID
    email: str
    roles: list[str]
    points_balance: int
    subscription: StateOut | None = None

    @classmethod
    def from_model(
        cls, user: User, points_balance: int, subscription: Current | None = None
    ) -> ProfileOut:
        return cls(
            user_id=user.id,
            email=user.email,
            roles=sorted(user.roles),
            points_balance=points_balance,
            subscription=StateOut.from_current(subscription) if subscription else None,
        )
