from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from core.rustore import RuStoreClient, RuStoreConfig
from tests.rustore.fake_rustore import FakeRuStore, running

KEY_ID = "1234567"
APP_ID = 42
PACKAGE = "ru.kopilka.app"


def console_key(key: rsa.RSAPrivateKey) -> str:
    """The private key in the Console's form: base64 of PKCS#8 DER, one line, no armour."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake(rsa_key: rsa.RSAPrivateKey) -> Iterator[FakeRuStore]:
    yield from running(rsa_key.public_key(), KEY_ID)


def make_config(fake: FakeRuStore, key: rsa.RSAPrivateKey, **overrides: Any) -> RuStoreConfig:
    """Short timeouts and a small retry budget, so failure tests finish in well under a second."""
    settings: dict[str, Any] = {
        "key_id": KEY_ID,
        "private_key": console_key(key),
        "app_id": APP_ID,
        "package_name": PACKAGE,
        "api_url": fake.url,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "pool_timeout": 1.0,
        "confirm_read_timeout": 2.0,
        "retry_budget": 1.0,
        "max_attempts": 4,
        "backoff_initial": 0.02,
        "backoff_max": 0.1,
    }
    settings.update(overrides)
    return RuStoreConfig(**settings)


ClientFactory = Callable[..., RuStoreClient]


@pytest.fixture
async def make_client(
    fake: FakeRuStore, rsa_key: rsa.RSAPrivateKey
) -> AsyncIterator[ClientFactory]:
    clients: list[RuStoreClient] = []

    def factory(**overrides: Any) -> RuStoreClient:
        observer = overrides.pop("observer", None)
        client = RuStoreClient(make_config(fake, rsa_key, **overrides), observer=observer)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make_client: ClientFactory) -> RuStoreClient:
    return make_client()
