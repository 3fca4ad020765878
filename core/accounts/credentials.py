"""Email normalisation, the password policy and argon2id hashing.

Password policy (checked on register and on change, not on login):
- 10 to 128 characters; the cap bounds the cost of hashing what a client sends;
- characters from at least two classes (lower case, upper case, digits, anything else), so
  `aaaaaaaaaa` or `1234567890` are refused;
- not the account's email address or the part before the `@`.

Hashing runs in a worker thread behind a small limiter: argon2id costs ~50 ms and 64 MiB per call
by design, and neither the event loop nor the process's memory may scale with a login flood.
"""

from __future__ import annotations

import re
from functools import cache

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import invalid_field

EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
CONCURRENT_HASHES = 4

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
_CLASSES = (str.islower, str.isupper, str.isdigit)

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 parameters


def normalize_email(email: str) -> str:
    """One spelling per address, so `Ann@X.ru` and `ann@x.ru` are one account."""
    normalized = email.strip().lower()
    if len(normalized) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(normalized):
        raise invalid_field("email", "not a valid email address")
    return normalized


def check_password_policy(password: str, email: str, *, field: str = "password") -> None:
    """Raise a 400 naming `field` when `password` breaks the policy above."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise invalid_field(
            field, f"must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long"
        )
    if _character_classes(password) < 2:
        raise invalid_field(
            field, "must mix at least two of: lower case, upper case, digits, symbols"
        )
    if password.lower() in (email, email.partition("@")[0]):
        raise invalid_field(field, "must not be the email address")


def _character_classes(password: str) -> int:
    classes = {next((i for i, test in enumerate(_CLASSES) if test(ch)), 3) for ch in password}
    return len(classes)


@cache
def _limiter() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(CONCURRENT_HASHES)


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=_limiter())


async def verify_password(password_hash: str, password: str) -> bool:
    return await anyio.to_thread.run_sync(_verify, password_hash, password, limiter=_limiter())


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True after the hashing parameters were raised; the next login stores a fresh hash."""
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("a password no account has")


async def burn_verification_time(password: str) -> None:
    """Spend what a real check costs, so a missing account answers as slowly as a wrong password."""
    await anyio.to_thread.run_sync(_verify_dummy, password, limiter=_limiter())


def _verify_dummy(password: str) -> None:
    _verify(_dummy_hash(), password)
