"""Fault injection for the public API, switchable at run time through the control API.

A rule matches requests by endpoint name (the `endpoint` opt of each route, e.g. `v2_purchase`,
shared by a production route and its sandbox twin), by a path glob when it contains '/' (fnmatch
on the request path, e.g. `/public/*:confirm`), or everything with `*`. The first matching rule
wins. It adds its latency, then rolls once against its rates in this order: reset, hang, 429, 5xx,
malformed. `times` limits a rule to its next N matching requests. The control API is never
faulted (its routes carry the `no_faults` opt), or a test could not switch a fault off again.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from fnmatch import fnmatchcase
from typing import Annotated, Any

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from sandbox.envelope import SOMETHING_WENT_WRONG, envelope
from sandbox.state import app_sandbox

Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]
MALFORMED_BODY = b'{"code":"OK","message":null,"body":{"invoiceId":'


class FaultRule(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    endpoint: Annotated[str, msgspec.Meta(min_length=1)] = "*"
    latency_ms: Annotated[int, msgspec.Meta(ge=0)] = 0
    reset_rate: Rate = 0
    hang_rate: Rate = 0
    rate_limit_rate: Rate = 0
    error_rate: Rate = 0
    error_status: Annotated[int, msgspec.Meta(ge=500, le=599)] = 503
    malformed_rate: Rate = 0
    times: Annotated[int, msgspec.Meta(ge=1)] | None = None
    id: int = 0

    def matches(self, endpoint: str, path: str) -> bool:
        if self.endpoint == "*":
            return True
        if "/" in self.endpoint:
            return fnmatchcase(path, self.endpoint)
        return self.endpoint == endpoint


class FaultReset(Exception):
    """Raised after the response has started, so that uvicorn drops the connection."""


class FaultBook:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, rule: FaultRule) -> FaultRule:
        rule.id = next(self._ids)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def remove(self, rule_id: int) -> bool:
        """Drop one rule, leaving the others (and their order) as they are."""
        kept = [rule for rule in self.rules if rule.id != rule_id]
        removed = len(kept) != len(self.rules)
        self.rules[:] = kept
        return removed

    def take(self, endpoint: str, path: str) -> FaultRule | None:
        """The first rule that matches, counting it against its `times`."""
        for rule in self.rules:
            if rule.matches(endpoint, path):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self.rules.remove(rule)
                return rule
        return None


def _outcome(rule: FaultRule) -> str | None:
    roll = random.random()  # noqa: S311 - fault dice, not security
    for name, rate in (
        ("reset", rule.reset_rate),
        ("hang", rule.hang_rate),
        ("rate_limit", rule.rate_limit_rate),
        ("error", rule.error_rate),
        ("malformed", rule.malformed_rate),
    ):
        if roll < rate:
            return name
        roll -= rate
    return None


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), *headers]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _error_body(scope: Scope, message: str) -> bytes:
    sandbox = app_sandbox(scope["app"])
    return json.dumps(envelope(None, sandbox.clock.now(), code="ERROR", message=message)).encode()


class FaultMiddleware(ASGIMiddleware):
    """Applies the first matching rule of the book to each public request."""

    scopes = (ScopeType.HTTP,)
    exclude_opt_key = "no_faults"

    def __init__(self, book: FaultBook, hang_seconds: float) -> None:
        self.book = book
        self.hang_seconds = hang_seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        opt: dict[str, Any] = scope["route_handler"].opt
        rule = self.book.take(str(opt.get("endpoint", "")), scope["path"])
        if rule is None:
            await next_app(scope, receive, send)
            return
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        match _outcome(rule):
            case "reset":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                raise FaultReset
            case "hang":
                await self._hang(scope, receive, send, next_app)
            case "rate_limit":
                body = _error_body(scope, "Too many requests")
                await _send(send, 429, body, [(b"retry-after", b"1")])
            case "error":
                await _send(send, rule.error_status, _error_body(scope, SOMETHING_WENT_WRONG), [])
            case "malformed":
                await _send(send, 200, MALFORMED_BODY, [])
            case _:
                await next_app(scope, receive, send)

    async def _hang(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Say nothing until the client gives up, or answer normally after `hang_seconds`.

        Reading the request while waiting notices the client's disconnect, so no task is left
        sleeping for minutes; the messages read are replayed to the handler if it runs after all.
        """
        seen: list[ReceiveMessage] = []

        async def until_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                seen.append(message)

        try:
            await asyncio.wait_for(until_disconnect(), self.hang_seconds)
        except TimeoutError:
            pass
        else:
            return

        async def replay() -> ReceiveMessage:
            return seen.pop(0) if seen else await receive()

        await next_app(scope, replay, send)
