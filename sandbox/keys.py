"""Key material: the company's RSA key pair and the webhook AES keys.

RuStore's Console hands the developer a base64 PKCS#8 DER private key with no PEM armour and keeps
the public half; the sandbox does the same, registering public keys by keyId from `SANDBOX_KEYS`
("keyId:base64 SubjectPublicKeyInfo DER", comma-separated).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

WEBHOOK_KEY_BYTES = 32


class KeyFormatError(ValueError):
    """A key string that does not decode to what it should."""


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    private_key: str  # base64 PKCS#8 DER, for the client
    public_key: str  # base64 SubjectPublicKeyInfo DER, for the sandbox


def generate_key_pair(key_id: str | None = None) -> KeyPair:
    """An RSA-2048 key pair under a fresh numeric keyId, as the Console issues them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(
        key_id=key_id or str(1_000_000_000 + secrets.randbelow(9_000_000_000)),
        private_key=base64.b64encode(private_der).decode(),
        public_key=base64.b64encode(public_der).decode(),
    )


def generate_webhook_key() -> str:
    """A notification decryption key: base64 of 32 random bytes (AES-256)."""
    return base64.b64encode(os.urandom(WEBHOOK_KEY_BYTES)).decode()


def load_public_key(encoded: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise KeyFormatError("not a base64 DER public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("not an RSA public key")
    return key


def decode_webhook_key(encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise KeyFormatError("webhook key is not base64") from exc
    if len(raw) != WEBHOOK_KEY_BYTES:
        raise KeyFormatError("webhook key must decode to 32 bytes")
    return raw


def encode_registered_keys(keys: dict[str, str]) -> str:
    """The `SANDBOX_KEYS` value for keyId → base64 public key."""
    return ",".join(f"{key_id}:{public}" for key_id, public in keys.items())


def parse_registered_keys(value: str) -> dict[str, rsa.RSAPublicKey]:
    keys: dict[str, rsa.RSAPublicKey] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        key_id, sep, public = item.partition(":")
        if not sep or not key_id:
            raise KeyFormatError("SANDBOX_KEYS items must look like keyId:base64")
        keys[key_id] = load_public_key(public)
    return keys
