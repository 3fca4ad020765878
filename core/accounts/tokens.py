"""Access tokens (JWT, HS256) and refresh tokens (opaque random strings).

An access token is accepted only if everything about it is what we issue: the one pinned
algorithm (so `none`, RS256 or HS512 tokens are refused before any key is used), our issuer and
audience, every registered claim present, and `typ: access`, so no other token we might sign
later doubles as an access token. A refresh token is not a JWT at all and fails the first check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid

import jwt
import msgspec

from core.accounts.models import Role
from core.settings import Settings

ALGORITHM = "HS256"
TYP_ACCESS = "access"
LEEWAY_SECONDS = 10
LEEWAY = dt.timedelta(seconds=LEEWAY_SECONDS)
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "jti"]


class InvalidAccessToken(Exception):
    """The token is not one of our valid access tokens; `expired` tells a client to refresh."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


class AccessClaims(msgspec.Struct, frozen=True):
    """Who is calling, as the access token proves it; guards read `roles`."""

    user_id: uuid.UUID
    roles: frozenset[Role]
    token_id: str
    expires_at: dt.datetime


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, roles: list[str], now: dt.datetime
) -> str:
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "iat": now,
        "exp": now + dt.timedelta(seconds=settings.access_token_ttl_seconds),
        "jti": uuid.uuid4().hex,
        "typ": TYP_ACCESS,
        "roles": roles,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidAccessToken("expired", expired=True) from None
    except jwt.InvalidTokenError as exc:
        raise InvalidAccessToken(str(exc)) from None
    if claims.get("typ") != TYP_ACCESS:
        raise InvalidAccessToken("not an access token")
    try:
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            roles=frozenset(Role(role) for role in claims.get("roles", ())),
            token_id=claims["jti"],
            expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
        )
    except (TypeError, ValueError):
        raise InvalidAccessToken("malformed claims") from None


class AccessTokenVerifier:
    """`decode_access_token` with the answers remembered per token, until the token expires.

    An app sends the same access token with every request for its lifetime (15 minutes by
    default), and checking it costs more CPU than anything else in a status poll but the
    query. A token's claims cannot change, and the cache is keyed by the whole token, signature
    included, so a remembered token is exactly one that was verified; its expiry is checked again
    on every use. One verifier per app, so apps with different secrets never share answers.
    """

    def __init__(self, settings: Settings, capacity: int = 10_000) -> None:
        self.settings = settings
        self.capacity = capacity
        self._verified: dict[str, AccessClaims] = {}

    def verify(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = decode_access_token(self.settings, token)
            self._remember(token, claims)
        elif claims.expires_at + LEEWAY < dt.datetime.now(dt.UTC):
            del self._verified[token]
            raise InvalidAccessToken("expired", expired=True)
        return claims

    def _remember(self, token: str, claims: AccessClaims) -> None:
        if len(self._verified) >= self.capacity:
            del self._verified[next(iter(self._verified))]  # the oldest: dicts keep order
        self._verified[token] = claims


def new_refresh_token() -> str:
    """256 random bits; long enough that storing only a fast hash of it is safe."""
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
