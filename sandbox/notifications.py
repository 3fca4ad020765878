"""Server notifications: build, encrypt, POST, retry, and keep a delivery log (§7).

Every state change becomes a notification queued for one background worker, so the call that
caused it returns at once. Production and test payments go to their own URL with their own key,
as RuStore's two Console cards do. The worker sends in order (unless `shuffle` is on), retries
anything that is not HTTP 200 on the configured schedule (real seconds, not the sandbox clock),
and records every attempt.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx
import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sandbox.clock import Clock, utc_time
from sandbox.config import SandboxConfig, StatusCase
from sandbox.keys import decode_webhook_key
from sandbox.purchases import InvoiceChanged
from sandbox.state import Event
from sandbox.subscriptions import SubscriptionChanged

log = logging.getLogger("sandbox.notifications")

IV_BYTES = 12


def encrypt(key_b64: str, plaintext: bytes) -> str:
    """base64(IV ‖ ciphertext ‖ tag), AES-256-GCM with a 12-byte IV and no AAD (§7.2)."""
    iv = os.urandom(IV_BYTES)
    return base64.b64encode(
        iv + AESGCM(decode_webhook_key(key_b64)).encrypt(iv, plaintext, None)
    ).decode()


class NotifySettings(msgspec.Struct, kw_only=True, rename="camel"):
    """What the control API can change at run time (starts from the `SANDBOX_*` variables)."""

    enabled: bool
    url: str
    key: str
    test_url: str
    test_key: str
    retry_seconds: list[float]
    status_case: StatusCase
    deliver_twice: bool = False
    shuffle: bool = False

    @classmethod
    def from_config(cls, config: SandboxConfig) -> NotifySettings:
        return cls(
            enabled=config.notify_enabled,
            url=config.webhook_url,
            key=config.webhook_key,
            test_url=config.test_webhook_url,
            test_key=config.test_webhook_key,
            retry_seconds=list(config.notify_retry_seconds),
            status_case=config.notify_status_case,
        )


@dataclass
class Outgoing:
    """One notification on its way; `attempt` counts sends so far."""

    id: str
    test: bool
    payload: dict[str, Any]
    generation: int
    first_timestamp: str
    retry: bool = True
    attempt: int = 0


@dataclass
class Delivery:
    """One POST attempt, as the delivery log shows it."""

    id: str
    notification_type: str
    test: bool
    attempt: int
    url: str
    status_code: int | None
    error: str | None
    payload: dict[str, Any]
    sent_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "notificationType": self.notification_type,
            "test": self.test,
            "attempt": self.attempt,
            "url": self.url,
            "statusCode": self.status_code,
            "error": self.error,
            "payload": self.payload,
            "sentAt": self.sent_at,
        }


@dataclass
class Notifier:
    config: SandboxConfig
    clock: Clock
    settings: NotifySettings = field(init=False)
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue, init=False)
    _generation: int = field(default=0, init=False)
    _waiting_retries: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.settings = NotifySettings.from_config(self.config)

    def reset(self) -> None:
        """Back to the configured settings; drop the log and whatever is queued or retrying."""
        self.settings = NotifySettings.from_config(self.config)
        self.deliveries.clear()
        self._generation += 1  # retries still waiting on a timer are dropped when they wake
        while not self._queue.empty():
            self._queue.get_nowait()

    @property
    def pending(self) -> int:
        return self._queue.qsize() + self._waiting_retries

    # --- building ------------------------------------------------------------------------------

    def _status(self, value: str) -> str:
        return value.lower() if self.settings.status_case == "lower" else value.upper()

    def on_event(self, event: Event) -> None:
        """Turn a state change into its notification (§7.3)."""
        if isinstance(event, InvoiceChanged):
            invoice = event.invoice
            data: dict[str, Any] = {
                "product_code": invoice.product_code,
                "change_status_time": utc_time(event.at),
                "status_new": self._status(event.new),
                "status_old": self._status(event.old),
                "purchase_token": invoice.purchase_token,
                "invoice_id": str(invoice.invoice_id),
                "order_id": invoice.order_id,
                "purchase_id": invoice.purchase_id,
                "developer_payload": invoice.developer_payload,
            }
            self.send("INVOICE_STATUS", data, test=invoice.test, app_id=invoice.app_id, at=event.at)
        elif isinstance(event, SubscriptionChanged):
            sub = event.subscription
            data = {
                "product_code": sub.product_code,
                "event_time": utc_time(event.at),
                "subscription_event_type": event.event,
                "status_new": event.status_new,
                "status_old": event.status_old,
                "period_new": event.period_new,
                "period_old": event.period_old,
                "autorenewing": sub.auto_renewing,
                "invoice_id": str(sub.invoice_id),
                "order_id": sub.order_id,
                "purchase_id": sub.purchase_id,
                "developer_payload": sub.developer_payload,
            }
            self.send("SUBSCRIPTION_EVENT", data, test=sub.test, app_id=sub.app_id, at=event.at)

    def send(
        self,
        kind: str,
        data: dict[str, Any],
        *,
        test: bool,
        app_id: int,
        at: datetime,
        retry: bool = True,
    ) -> str | None:
        """Queue one notification; `data` travels JSON-encoded a second time, as a string.

        `at` is the change time: the first attempt carries it as its timestamp, as RuStore's
        does ("equals the envelope timestamp if delivered on the first try"); retries carry the
        time they are sent. Returns the id, or None when notifications are off (then nothing
        queues up, §7).
        """
        if not self.settings.enabled:
            return None
        payload = {
            "app_id": app_id,
            "notification_type": f"{kind}_SANDBOX" if test else kind,
            "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        }
        item = Outgoing(str(uuid.uuid4()), test, payload, self._generation, utc_time(at), retry)
        self._queue.put_nowait(item)
        if self.settings.deliver_twice:
            self._queue.put_nowait(replace(item))
        return item.id

    # --- delivering ----------------------------------------------------------------------------

    async def run(self, client: httpx.AsyncClient) -> None:
        """The delivery worker; runs for the life of the app."""
        while True:
            batch = [await self._queue.get()]
            if self.settings.shuffle:
                await asyncio.sleep(self.config.notify_shuffle_window_ms / 1000)
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                random.shuffle(batch)
            for item in batch:
                if item.generation == self._generation:
                    await self._attempt(client, item)

    async def _attempt(self, client: httpx.AsyncClient, item: Outgoing) -> None:
        url, key = (
            (self.settings.test_url, self.settings.test_key)
            if item.test
            else (self.settings.url, self.settings.key)
        )
        item.attempt += 1
        status_code: int | None = None
        error: str | None = None
        now = item.first_timestamp if item.attempt == 1 else utc_time(self.clock.now())
        if not url or not key:
            error = "no URL or key configured"
        else:
            body = {
                "id": item.id,
                "timestamp": now,
                "payload": encrypt(key, json.dumps(item.payload, ensure_ascii=False).encode()),
            }
            try:
                response = await client.post(url, json=body)
                status_code = response.status_code
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        kind = str(item.payload["notification_type"])
        self.deliveries.append(
            Delivery(
                item.id, kind, item.test, item.attempt, url, status_code, error, item.payload, now
            )
        )
        log.info(
            "notification %s %s attempt %d -> %s", kind, item.id, item.attempt, status_code or error
        )
        retries = self.settings.retry_seconds if item.retry else []
        if status_code != 200 and item.attempt <= len(retries):
            delay = retries[item.attempt - 1]
            self._waiting_retries += 1
            asyncio.get_running_loop().call_later(delay, self._requeue, item)

    def _requeue(self, item: Outgoing) -> None:
        self._waiting_retries -= 1
        if item.generation == self._generation:
            self._queue.put_nowait(item)
