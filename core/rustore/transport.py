"""An httpx transport that sends RuStore calls over aiohttp.

Why: at the worker's concurrency httpx's own transport (httpcore over anyio) spends about three
times the CPU of this one per call, and a purchase makes three calls (docs/performance-history.md,
session 7). The client keeps httpx's API, its timeouts and its exceptions; only the socket work
moves to aiohttp.

What a transport here must get right is which failures happened before the request was written.
The client retries those freely, even a `:confirm`; anything later is ambiguous (RuStore may have
acted), so the client re-reads instead of repeating it. Hence:

- failing to connect, or to get a pooled connection in time → `httpx.ConnectError` /
  `httpx.ConnectTimeout` (not sent);
- a reset, a disconnect, a read timeout or a broken response after that → `httpx.ReadError`,
  `httpx.ReadTimeout` or `httpx.RemoteProtocolError` (maybe acted on).

aiohttp resends a GET or PUT once by itself when its connection drops (RFC 9112 §9.3.1), with no
public switch to stop it, and RuStore's `:confirm` is a PUT. The exchange therefore runs in a client
middleware that turns aiohttp's errors into httpx's: an httpx error is not one aiohttp retries, so
a request ends where it failed and the client decides what to repeat.

httpx's write timeout has no aiohttp counterpart: aiohttp starts the read clock once the request is
written, and a RuStore request (a few hundred bytes at most) is written in one go.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import yarl

KEEPALIVE_SECONDS = 5.0
"""How long an idle connection stays pooled (httpx's own default)."""


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per transport, opened on first use inside the running event loop."""

    def __init__(self, *, max_connections: int) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        async with session.request(
            request.method,
            # As httpx built it: yarl would otherwise re-quote it, turning an id's %3A into ':'.
            yarl.URL(str(request.url), encoded=True),
            headers=request.headers.multi_items(),
            data=await request.aread() or None,
            allow_redirects=False,
            timeout=_client_timeout(request.extensions.get("timeout", {})),
        ) as response:
            body = await response.read()
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=httpx.create_ssl_context(),
        )
        # httpx keeps the cookies and decodes the body; aiohttp must not do either a second time.
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            middlewares=(_exchange,),
        )
        return self._session


async def _exchange(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """The whole exchange, body included, with aiohttp's errors raised as httpx's."""
    with _as_httpx_errors():
        response = await handler(request)
        try:
            await response.read()
        except BaseException:
            response.close()
            raise
    return response


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc)) from exc
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    except aiohttp.SocketTimeoutError as exc:
        raise httpx.ReadTimeout(str(exc)) from exc
    except aiohttp.ClientResponseError as exc:
        raise httpx.RemoteProtocolError(str(exc)) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


def _client_timeout(timeout: dict[str, Any]) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts in aiohttp's terms.

    aiohttp's `connect` covers waiting for a pooled connection and opening it, httpx's `pool` and
    `connect` one each, so it gets their sum; `sock_connect` bounds the opening alone.
    """
    pool, connect = timeout.get("pool"), timeout.get("connect")
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if pool is None or connect is None else pool + connect,
        sock_connect=connect,
        sock_read=timeout.get("read"),
    )
