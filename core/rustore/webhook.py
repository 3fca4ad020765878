"""RuStore server notifications: AES-256-GCM payload crypto and typed parsing (rustore-api.md §7).

The POST body is `{"id", "timestamp", "payload"}`; `payload` is base64(IV(12) ‖ ciphertext ‖
tag(16)), AES-256-GCM without AAD, under the key the Console shows once (base64 of 32 bytes).
Decrypted, it is `{"app_id", "notification_type", "data"}` where `data` is JSON encoded a second
time (a string). There is no signature header: the GCM tag is the only proof the body is RuStore's,
so anything that fails it is refused with `WebhookDecryptError` (the API answers 400 and RuStore
resends). A notification only says that something changed; processing re-reads the API.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any, TypeVar

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.rustore.errors import (
    UnknownNotificationTypeError,
    WebhookDecryptError,
    WebhookFormatError,
)
from core.rustore.models import Model
from core.rustore.statuses import InvoiceStatus, NotificationType, SubscriptionEventType

IV_LENGTH = 12
TAG_LENGTH = 16
KEY_LENGTH = 32

D = TypeVar("D", bound=Model)


class WebhookEnvelope(Model):
    """The POST body RuStore sends; `id` is the notification id to deduplicate on."""

    id: str
    payload: str
    timestamp: str | None = None


class InvoiceStatusData(Model):
    """`data` of INVOICE_STATUS(_SANDBOX); statuses: lowercase in 2024 docs, UPPERCASE in 2025."""

    invoice_id: str | None = None
    """Use with `RuStoreClient.get_purchase` to fetch the current state (2025 advice)."""
    purchase_id: str | None = None
    order_id: str | None = None
    purchase_token: str | None = None
    """Legacy token such as `111.123` (the 2024 advice was to look the payment up by it)."""
    product_code: str | None = None
    status_new: str | None = None
    status_old: str | None = None
    change_status_time: str | None = None
    developer_payload: str | None = None
    """UNVERIFIED: read by one client only."""

    @property
    def new_status(self) -> InvoiceStatus:
        return InvoiceStatus(self.status_new or "")

    @property
    def old_status(self) -> InvoiceStatus:
        return InvoiceStatus(self.status_old or "")


class SubscriptionEventData(Model):
    """`data` of SUBSCRIPTION_EVENT(_SANDBOX). UNVERIFIED: fields from florencecat's client only."""

    subscription_event_type: str | None = None
    product_code: str | None = None
    event_time: str | None = None
    status_new: str | None = None
    """ACTIVE | PAUSED | CLOSED | TERMINATED, per that client."""
    status_old: str | None = None
    period_new: str | None = None
    """TRIAL | PROMO | MAIN | GRACE | HOLD, per that client."""
    period_old: str | None = None
    autorenewing: bool | None = None
    invoice_id: str | None = None
    order_id: str | None = None
    purchase_id: str | None = None
    developer_payload: str | None = None

    @property
    def event_type(self) -> SubscriptionEventType:
        return SubscriptionEventType(self.subscription_event_type or "")


class TestEventData(Model):
    """`data` of TEST_EVENT(_SANDBOX): `{"test": "TEST"}`, sent by the Console's check button."""

    __test__ = False  # not a pytest test class, despite the name

    test: str | None = None


class Notification(Model):
    """A decrypted notification; one subclass per documented type, each with typed `data`."""

    app_id: int
    notification_type: NotificationType

    @property
    def sandbox(self) -> bool:
        """True for `*_SANDBOX` types: test payments, read through the sandbox API paths."""
        return self.notification_type.sandbox


class InvoiceStatusNotification(Notification):
    data: InvoiceStatusData


class SubscriptionEventNotification(Notification):
    data: SubscriptionEventData


class TestEventNotification(Notification):
    __test__ = False  # not a pytest test class, despite the name

    data: TestEventData


AnyNotification = InvoiceStatusNotification | SubscriptionEventNotification | TestEventNotification


class _RawNotification(Model):
    app_id: int
    notification_type: str
    data: str | dict[str, Any]
    """Documented as a JSON string; an object is accepted too, should RuStore stop
    double-encoding it."""


class WebhookCipher:
    """AES-256-GCM with RuStore's layout; one instance per notification key (prod and sandbox)."""

    def __init__(self, key_b64: str) -> None:
        try:
            key = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("RuStore webhook key is not valid base64") from None
        if len(key) != KEY_LENGTH:
            raise ValueError(f"RuStore webhook key must decode to {KEY_LENGTH} bytes")
        self._aead = AESGCM(key)

    def decrypt(self, payload_b64: str) -> bytes:
        """The plaintext of `payload`, or `WebhookDecryptError` saying which check failed."""
        try:
            raw = base64.b64decode(payload_b64, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookDecryptError("payload is not valid base64") from None
        if len(raw) < IV_LENGTH + TAG_LENGTH:
            raise WebhookDecryptError(
                f"payload is {len(raw)} bytes, shorter than IV and tag ({IV_LENGTH + TAG_LENGTH})"
            )
        try:
            return self._aead.decrypt(raw[:IV_LENGTH], raw[IV_LENGTH:], None)
        except InvalidTag:
            raise WebhookDecryptError(
                "payload failed AES-GCM authentication (wrong key, or tampered/truncated data)"
            ) from None

    def encrypt(self, plaintext: bytes) -> str:
        """The `payload` RuStore would send for `plaintext`, with a random IV (for tests and the
        sandbox emulator)."""
        iv = os.urandom(IV_LENGTH)
        return base64.b64encode(iv + self._aead.encrypt(iv, plaintext, None)).decode("ascii")


def parse_envelope(body: bytes) -> WebhookEnvelope:
    """The outer POST body; `WebhookFormatError` if it is not the documented shape."""
    try:
        return msgspec.json.decode(body, type=WebhookEnvelope)
    except msgspec.DecodeError as exc:
        raise WebhookFormatError(f"notification body: {exc}") from None


def parse_notification(plaintext: bytes) -> AnyNotification:
    """A decrypted payload as a typed notification.

    `WebhookDecryptError` if the plaintext is not JSON (a wrong-key decryption cannot get here, but
    a sender bug can), `UnknownNotificationTypeError` for a type RuStore does not document, and
    `WebhookFormatError` for any other shape problem.
    """
    try:
        raw = msgspec.json.decode(plaintext, type=_RawNotification, strict=False)
    except msgspec.ValidationError as exc:
        raise WebhookFormatError(f"notification: {exc}") from None
    except msgspec.DecodeError as exc:
        raise WebhookDecryptError(f"decrypted payload is not JSON: {exc}") from None
    try:
        notification_type = NotificationType(raw.notification_type.strip().upper())
    except ValueError:
        raise UnknownNotificationTypeError(raw.notification_type) from None
    app_id = raw.app_id
    match notification_type.base:
        case NotificationType.INVOICE_STATUS:
            return InvoiceStatusNotification(
                app_id=app_id,
                notification_type=notification_type,
                data=_data(raw.data, InvoiceStatusData),
            )
        case NotificationType.SUBSCRIPTION_EVENT:
            return SubscriptionEventNotification(
                app_id=app_id,
                notification_type=notification_type,
                data=_data(raw.data, SubscriptionEventData),
            )
        case _:
            return TestEventNotification(
                app_id=app_id,
                notification_type=notification_type,
                data=_data(raw.data, TestEventData),
            )


def _data(raw: str | dict[str, Any], data_class: type[D]) -> D:
    try:
        if isinstance(raw, str):
            return msgspec.json.decode(raw, type=data_class, strict=False)
        return msgspec.convert(raw, data_class, strict=False)
    except msgspec.DecodeError as exc:
        raise WebhookFormatError(f"notification data: {exc}") from None


def read_notification(
    body: bytes, cipher: WebhookCipher
) -> tuple[WebhookEnvelope, AnyNotification]:
    """Parse, decrypt and type one webhook POST body: what the API endpoint calls."""
    envelope = parse_envelope(body)
    return envelope, parse_notification(cipher.decrypt(envelope.payload))
