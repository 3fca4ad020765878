"""`POST /public/auth` and the `Public-Token` check every other public call goes through.

Signature: base64 RSASSA-PKCS1-v1_5 / SHA-512 over the UTF-8 of keyId + timestamp (§2). Tokens are
opaque random strings mapped to (keyId, expiry); the sandbox clock decides expiry.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from litestar import Request, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from sandbox.envelope import ApiError, Json, envelope
from sandbox.state import Sandbox, Token, app_sandbox

log = logging.getLogger("sandbox.auth")

TOKEN_TTL = timedelta(seconds=900)
TIMESTAMP_TOLERANCE = timedelta(seconds=60)


class AuthRequest(msgspec.Struct, rename="camel"):
    """keyId is a string in the docs and every client, an int64 in the OpenAPI: take both."""

    key_id: str | int | None = None
    company_id: str | int | None = None
    timestamp: str | None = None
    signature: str | None = None


def _auth_error(status_code: int, message: str) -> ApiError:
    # UNCERTAIN: the auth doc lists "error / OK"; the examples elsewhere show "ERROR".
    return ApiError(status_code, "ERROR", message)


def _parse_timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _verify(sandbox: Sandbox, request: AuthRequest) -> str:
    """The documented checks, each with its documented status and message; returns the keyId."""
    if request.key_id is None:
        if request.company_id is not None:
            raise _auth_error(400, "Incorrect usage of companyId. Please use keyId")
        raise _auth_error(400, "KeyId or companyId must be not null")
    key_id = str(request.key_id)
    registered = sandbox.keys.get(key_id)
    if registered is None:
        raise _auth_error(404, "Company key not found")
    if not registered.enabled:
        raise _auth_error(400, "Company key disabled")
    moment = _parse_timestamp(request.timestamp)
    # UNCERTAIN: an unparseable or offset-less timestamp is reported like an out-of-range one.
    if moment is None or abs(moment - sandbox.clock.now()) > TIMESTAMP_TOLERANCE:
        raise _auth_error(400, "Range timestamp not valid")
    try:
        signature = base64.b64decode(request.signature or "", validate=True)
        message = (key_id + (request.timestamp or "")).encode()
        registered.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA512())
    except (binascii.Error, InvalidSignature) as exc:
        raise _auth_error(400, "Signature encode error") from exc
    return key_id


@post(["/public/auth", "/public/auth/"], status_code=200, opt={"endpoint": "auth"})
async def issue_token(request: Request[Any, Any, Any], sandbox: Sandbox) -> Json:
    try:
        body = msgspec.json.decode(await request.body(), type=AuthRequest)
    except msgspec.DecodeError as exc:
        raise ApiError.bad_request() from exc
    key_id = _verify(sandbox, body)
    jwe = secrets.token_urlsafe(48)
    now = sandbox.clock.now()
    sandbox.tokens[jwe] = Token(key_id=key_id, expires_at=now + TOKEN_TTL)
    log.info("token issued for key %s", key_id)
    return envelope({"jwe": jwe, "ttl": int(TOKEN_TTL.total_seconds())}, now)


def require_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of every public payment route: a known, unexpired `Public-Token`."""
    sandbox = app_sandbox(connection.app)
    value = connection.headers.get("Public-Token")
    token = sandbox.tokens.get(value) if value else None
    # UNCERTAIN: the messages for a missing or unknown token are ours; 401 as for an expired one.
    if token is None:
        raise ApiError(401, "ERROR", "Jwe token is not valid")
    if sandbox.clock.now() >= token.expires_at:
        # UNCERTAIN: no source shows the HTTP status of "Jwe token is expired"; 401 is a guess.
        raise ApiError(401, "ERROR", "Jwe token is expired")
