"""The signed body of `POST /public/auth` (rustore-api.md §2).

RuStore checks RSASSA-PKCS1-v1_5 with SHA-512 over the UTF-8 bytes of `keyId + timestamp`, hashed
once (every working client does a single hash, although the docs word it as "hash, then sign").
The timestamp must be within 60 s of RuStore's clock, so a signature is good for about a minute and
is made fresh for every auth request.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from core.rustore.errors import RuStoreAuthError


def load_private_key(value: str) -> rsa.RSAPrivateKey:
    """Load the key as the Console prints it: base64 of PKCS#8 DER, no PEM armour.

    Whitespace (line breaks from copy-paste) is ignored. The error never contains the key.
    """
    compact = "".join(value.split())
    try:
        der = base64.b64decode(compact, validate=True)
        key = load_der_private_key(der, password=None)
    except (binascii.Error, ValueError, TypeError):
        raise RuStoreAuthError(
            "RuStore private key is not base64 of a PKCS#8 DER key (copy it from the Console)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RuStoreAuthError("RuStore private key must be an RSA key")
    return key


def auth_timestamp(now: datetime | None = None) -> str:
    """ISO-8601 with milliseconds and an explicit offset, e.g. `2024-06-18T08:49:08.290+00:00`."""
    moment = now if now is not None else datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("auth timestamp needs an aware datetime")
    return moment.isoformat(timespec="milliseconds")


def sign(key: rsa.RSAPrivateKey, key_id: str, timestamp: str) -> str:
    """Base64 (standard alphabet, padded) of SHA512withRSA over `key_id + timestamp`."""
    signature = key.sign((key_id + timestamp).encode(), padding.PKCS1v15(), hashes.SHA512())
    return base64.b64encode(signature).decode("ascii")


def auth_request_body(
    key: rsa.RSAPrivateKey, key_id: str, now: datetime | None = None
) -> dict[str, str]:
    """The JSON body for `POST /public/auth`; keyId is sent as a string like every client does."""
    timestamp = auth_timestamp(now)
    return {"keyId": key_id, "timestamp": timestamp, "signature": sign(key, key_id, timestamp)}
