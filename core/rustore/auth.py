"""Access-token cache: one `POST /public/auth` per token lifetime, however many callers wait.

RuStore's token lives `ttl` seconds (always 900 so far). We refresh it `margin` seconds early, so a
token never expires between our check and RuStore's. Refreshes are serialised by an asyncio.Lock and
re-checked after acquiring it, so 50 concurrent calls on a cold cache cause exactly one auth
request. When RuStore refuses a token, `invalidate` drops it only if it is still the current one:
callers that saw the same refusal then share a single re-auth instead of each forcing their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenCache:
    """Holds the current token; `fetch` returns a new `(token, ttl_seconds)` from RuStore."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        *,
        refresh_margin: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._margin = refresh_margin
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def _current(self) -> str | None:
        if self._token is not None and self._clock() < self._refresh_at:
            return self._token
        return None

    async def get(self) -> str:
        """A token valid for at least `refresh_margin` more seconds, fetching one if needed."""
        token = self._current()
        if token is not None:
            return token
        async with self._lock:
            token = self._current()
            if token is not None:
                return token
            started = self._clock()
            token, ttl = await self._fetch()
            # A tiny ttl must not make every call re-authenticate: keep at least half of it.
            margin = min(self._margin, ttl / 2)
            self._token = token
            self._refresh_at = started + ttl - margin
            return token

    def invalidate(self, token: str) -> None:
        """Forget `token` after RuStore refused it, unless another caller already replaced it."""
        if self._token == token:
            self._token = None
