"""A scripted stand-in for RuStore, served over real HTTP on 127.0.0.1 from a thread.

It does what the client's behaviour depends on and nothing more: `/public/auth` verifies the
SHA512withRSA signature with the registered public key and the 60 s timestamp window, and issues
opaque tokens; every other path requires a live `Public-Token` and plays the replies a test
scripted for it (the last reply repeats). Replies can also reset the connection or hang. Every
request is recorded with its raw request target, so tests can inspect the bytes on the wire.
"""

from __future__ import annotations

import base64
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

OK_EMPTY: dict[str, Any] = {"code": "OK", "message": None, "body": {}, "timestamp": None}


def ok(body: Any) -> dict[str, Any]:
    return {"code": "OK", "message": None, "body": body, "timestamp": _now_iso()}


def error(message: str, code: str = "ERROR") -> dict[str, Any]:
    return {"code": code, "message": message, "body": None, "timestamp": _now_iso()}


def _now_iso(offset: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset)).isoformat()


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    """A dict/list is sent as JSON, bytes as they are, None as an empty body."""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    action: Literal["reply", "reset", "hang"] = "reply"


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    """The raw request target exactly as the client wrote it (path and query)."""
    headers: dict[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops connections under 50 callers
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets and hangs are deliberate; keep their tracebacks out of the test output."""


class FakeRuStore:
    def __init__(self, public_key: rsa.RSAPublicKey, key_id: str) -> None:
        self.public_key = public_key
        self.key_id = key_id
        self.ttl = 900
        self.auth_delay = 0.0
        self.clock_offset = 0.0
        """Seconds RuStore's clock runs ahead of ours (to provoke "Range timestamp not valid")."""
        self.auth_replies: list[Reply] = []
        """Scripted auth answers; when empty, auth really verifies and issues tokens."""
        self.requests: list[Seen] = []
        self._routes: dict[tuple[str, str], list[Reply]] = {}
        self._tokens: set[str] = set()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def on(self, method: str, target: str, *replies: Reply) -> None:
        """Script the answers for `method target` (path, without the query); the last repeats."""
        with self._lock:
            self._routes[(method, target)] = list(replies)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def seen(self, method: str | None = None, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    @property
    def auth_count(self) -> int:
        return len(self.seen("POST", "/public/auth"))

    def _next_reply(self, method: str, path: str) -> Reply | None:
        with self._lock:
            replies = self._routes.get((method, path))
            if not replies:
                return None
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _auth(self, body: bytes) -> Reply:
        with self._lock:
            scripted = self.auth_replies.pop(0) if self.auth_replies else None
        if scripted is not None:
            return scripted
        request = json.loads(body)
        if request.get("keyId") != self.key_id:
            return Reply(404, error("Company key not found"))
        moment = datetime.fromisoformat(request["timestamp"])
        server_now = datetime.now(UTC) + timedelta(seconds=self.clock_offset)
        if abs((server_now - moment).total_seconds()) > 60:
            return Reply(400, error_at("Range timestamp not valid", self.clock_offset))
        try:
            self.public_key.verify(
                base64.b64decode(request["signature"]),
                (request["keyId"] + request["timestamp"]).encode(),
                padding.PKCS1v15(),
                hashes.SHA512(),
            )
        except (InvalidSignature, ValueError):
            return Reply(400, error("Signature encode error"))
        token = f"jwe-{next(self._counter)}-{time.monotonic_ns()}"
        with self._lock:
            self._tokens.add(token)
        return Reply(200, ok({"jwe": token, "ttl": self.ttl}), delay=self.auth_delay)

    def _answer(self, seen: Seen) -> Reply:
        if seen.method == "POST" and seen.path in ("/public/auth", "/public/auth/"):
            return self._auth(seen.body)
        with self._lock:
            token_ok = seen.headers.get("public-token") in self._tokens
        if not token_ok:
            return Reply(401, error("Jwe token is expired"))
        reply = self._next_reply(seen.method, seen.path)
        return reply if reply is not None else Reply(404, error("Not found", "NOT_FOUND"))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(
                    method=self.command,
                    target=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                with fake._lock:
                    fake.requests.append(seen)
                reply = fake._answer(seen)
                if reply.delay:
                    fake._release.wait(reply.delay)
                if reply.action == "reset":
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                    self.close_connection = True
                    return
                if reply.action == "hang":
                    fake._release.wait(30)
                    self.close_connection = True
                    return
                if isinstance(reply.body, bytes):
                    payload = reply.body
                elif reply.body is None:
                    payload = b""
                else:
                    payload = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = _handle

        return Handler


def error_at(message: str, offset: float) -> dict[str, Any]:
    """An error envelope stamped with the fake's own (possibly skewed) clock."""
    return {"code": "ERROR", "message": message, "body": None, "timestamp": _now_iso(offset)}


def running(public_key: rsa.RSAPublicKey, key_id: str) -> Iterator[FakeRuStore]:
    fake = FakeRuStore(public_key, key_id)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
