"""Raw-HTTP helpers for checking the sandbox against the RuStore documentation itself.

Everything here is written from rustore-api.md with httpx and `cryptography`, not with Kopilka's
client, so that a shared misunderstanding cannot make both sides agree.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.fixtures.sandbox import RUSTORE_EXAMPLES, SandboxHandle

MSK = timezone(timedelta(hours=3))


def example(name: str) -> Any:
    return json.loads((RUSTORE_EXAMPLES / name).read_text(encoding="utf-8"))


def sandbox_now(handle: SandboxHandle) -> datetime:
    return datetime.fromisoformat(handle.control.clock()["now"])


def sign(private_key_b64: str, message: str) -> str:
    key = serialization.load_der_private_key(base64.b64decode(private_key_b64), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signature = key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA512())
    return base64.b64encode(signature).decode()


def auth_body(handle: SandboxHandle, timestamp: str | None = None) -> dict[str, Any]:
    """A correct auth body (§2): keyId, an ISO timestamp with offset, signature of both."""
    ts = timestamp or sandbox_now(handle).astimezone(MSK).isoformat(timespec="milliseconds")
    return {
        "keyId": handle.key_id,
        "timestamp": ts,
        "signature": sign(handle.private_key, handle.key_id + ts),
    }


def decrypt(key_b64: str, payload_b64: str) -> dict[str, Any]:
    """§7.2: payload = base64(IV(12) ‖ ciphertext ‖ tag(16))."""
    raw = base64.b64decode(payload_b64)
    plain = AESGCM(base64.b64decode(key_b64)).decrypt(raw[:12], raw[12:], None)
    decoded: dict[str, Any] = json.loads(plain)
    return decoded


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def sandbox(sandbox_reset: SandboxHandle) -> SandboxHandle:
    return sandbox_reset


@pytest.fixture
def api(rustore_sandbox: SandboxHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=rustore_sandbox.base_url, timeout=5) as client:
        yield client


def token_headers(handle: SandboxHandle, api: httpx.Client) -> dict[str, str]:
    """A fresh `Public-Token` (valid by the sandbox clock as it is now)."""
    response = api.post("/public/auth", json=auth_body(handle))
    assert response.status_code == 200, response.text
    return {"Public-Token": response.json()["body"]["jwe"]}


@pytest.fixture
def headers(sandbox: SandboxHandle, api: httpx.Client) -> dict[str, str]:
    return token_headers(sandbox, api)


class Receiver:
    """A tiny webhook endpoint: records each POST (path, body); answers the queued statuses, then
    200."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.statuses: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    receiver.requests.append((self.path, body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, count: int, timeout: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
        wait_for(lambda: len(self.requests) >= count, timeout)
        with self._lock:
            return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver(sandbox: SandboxHandle) -> Iterator[Receiver]:
    """A receiver wired to both notification cards, each with its own key."""
    server = Receiver()
    sandbox.control.configure_notifications(
        url=server.url,
        key=sandbox.webhook_key,
        test_url=server.url + "?sandbox",
        test_key=sandbox.sandbox_webhook_key,
    )
    yield server
    server.close()


def opened(handle: SandboxHandle, received: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Decrypt each received body with its card's key (the test card's URL ends in ?sandbox)."""
    return [
        decrypt(
            handle.sandbox_webhook_key if path.endswith("?sandbox") else handle.webhook_key,
            body["payload"],
        )
        for path, body in received
    ]
