"""Login throttling: counters of failed logins in Redis, per account and per client address.

Policy (settings LOGIN_MAX_FAILURES_PER_ACCOUNT=5, LOGIN_MAX_FAILURES_PER_ADDRESS=20,
LOGIN_LOCKOUT_SECONDS=900): failures are counted in a window that starts at the first failure and
lasts LOGIN_LOCKOUT_SECONDS; the failure that reaches the limit locks the account (or address) for
a full LOGIN_LOCKOUT_SECONDS from then. While locked every attempt, right or wrong, gets 429
`login_locked` with Retry-After and no password is checked, so guessing cannot continue. Counters
exist for unknown emails too, so a lock says nothing about whether an account exists. A successful
login clears the account's counter; the address counter only expires, because one address may try
many accounts. The address limit is higher because mobile carriers put many users behind one
address.

If Redis is unreachable logins still work (fail open, logged): locking every user out of a payment
app because a cache is down does more harm than a short window without brute-force limits, which
the per-request rate limit still bounds.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.errors import TooManyRequestsError
from core.settings import Settings

log = structlog.get_logger(__name__)

KEY_PREFIX = "kopilka:login_failures"


class _Counter(NamedTuple):
    key: str
    limit: int


class LoginThrottle:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.lockout_seconds = settings.login_lockout_seconds
        self.account_limit = settings.login_max_failures_per_account
        self.address_limit = settings.login_max_failures_per_address

    def _account(self, email: str) -> _Counter:
        # Hashed so the Redis keyspace holds no email addresses.
        digest = hashlib.sha256(email.encode()).hexdigest()
        return _Counter(f"{KEY_PREFIX}:account:{digest}", self.account_limit)

    def _counters(self, email: str, address: str) -> tuple[_Counter, _Counter]:
        return self._account(email), _Counter(f"{KEY_PREFIX}:address:{address}", self.address_limit)

    async def ensure_allowed(self, email: str, address: str) -> None:
        """Raise `TooManyRequestsError` while the account or the address is locked."""
        for counter in self._counters(email, address):
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.get(counter.key)
                    pipe.ttl(counter.key)
                    failures, ttl = await pipe.execute()
            except RedisError as exc:
                log.warning("login_throttle.unavailable", error=str(exc))
                return
            if failures is not None and int(failures) >= counter.limit:
                raise TooManyRequestsError(
                    "Too many failed logins; try again later.",
                    code="login_locked",
                    retry_after=max(int(ttl), 1),
                )

    async def record_failure(self, email: str, address: str) -> None:
        for counter in self._counters(email, address):
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.set(counter.key, 0, ex=self.lockout_seconds, nx=True)
                    pipe.incr(counter.key)
                    _, failures = await pipe.execute()
                if failures >= counter.limit:
                    await self.redis.expire(counter.key, self.lockout_seconds)
            except RedisError as exc:
                log.warning("login_throttle.unavailable", error=str(exc))

    async def clear(self, email: str) -> None:
        try:
            await self.redis.delete(self._account(email).key)
        except RedisError as exc:
            log.warning("login_throttle.unavailable", error=str(exc))
