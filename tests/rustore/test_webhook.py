"""Notification crypto against `cryptography`'s AESGCM used directly, and notification parsing."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from core.rustore import (
    InvoiceStatus,
    InvoiceStatusNotification,
    NotificationType,
    SubscriptionEventNotification,
    SubscriptionEventType,
    TestEventNotification,
    UnknownNotificationTypeError,
    WebhookCipher,
    WebhookDecryptError,
    WebhookFormatError,
    read_notification,
)
from core.rustore.webhook import parse_notification

KEY = os.urandom(32)
KEY_B64 = base64.b64encode(KEY).decode()


def rustore_encrypt(plaintext: bytes, key: bytes = KEY) -> str:
    """What RuStore sends, built with AESGCM directly: base64(IV(12) ‖ ciphertext ‖ tag(16))."""
    iv = os.urandom(12)
    return base64.b64encode(iv + AESGCM(key).encrypt(iv, plaintext, None)).decode()


def notification(kind: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {"app_id": 12345, "notification_type": kind, "data": json.dumps(data)}
    ).encode()


def test_payload_encrypted_by_aesgcm_decrypts() -> None:
    plaintext = notification("TEST_EVENT", {"test": "TEST"})

    assert WebhookCipher(KEY_B64).decrypt(rustore_encrypt(plaintext)) == plaintext


@given(st.binary(max_size=2048))
def test_encrypt_then_decrypt_round_trips(plaintext: bytes) -> None:
    cipher = WebhookCipher(KEY_B64)
    payload = cipher.encrypt(plaintext)

    assert cipher.decrypt(payload) == plaintext
    raw = base64.b64decode(payload)
    assert AESGCM(KEY).decrypt(raw[:12], raw[12:], None) == plaintext


def test_tampered_tag_is_refused() -> None:
    raw = bytearray(base64.b64decode(rustore_encrypt(b'{"a": 1}')))
    raw[-1] ^= 0x01

    with pytest.raises(WebhookDecryptError, match="authentication"):
        WebhookCipher(KEY_B64).decrypt(base64.b64encode(bytes(raw)).decode())


def test_tampered_ciphertext_is_refused() -> None:
    raw = bytearray(base64.b64decode(rustore_encrypt(b'{"a": 1}')))
    raw[12] ^= 0x80

    with pytest.raises(WebhookDecryptError):
        WebhookCipher(KEY_B64).decrypt(base64.b64encode(bytes(raw)).decode())


def test_wrong_key_is_refused() -> None:
    with pytest.raises(WebhookDecryptError, match="wrong key"):
        WebhookCipher(KEY_B64).decrypt(rustore_encrypt(b"{}", key=os.urandom(32)))


@pytest.mark.parametrize(
    "payload",
    [
        rustore_encrypt(b'{"app_id": 1}')[:-3],  # truncated base64: bad padding
        base64.b64encode(os.urandom(20)).decode(),  # decodes, but shorter than IV + tag
        base64.b64encode(base64.b64decode(rustore_encrypt(b'{"app_id": 1}'))[:-4]).decode(),
        "%%% not base64 %%%",
        "",
    ],
    ids=["truncated-base64", "too-short", "truncated-bytes", "garbage", "empty"],
)
def test_broken_payloads_are_refused(payload: str) -> None:
    with pytest.raises(WebhookDecryptError):
        WebhookCipher(KEY_B64).decrypt(payload)


def test_non_json_plaintext_is_a_decrypt_error() -> None:
    body = json.dumps(
        {"id": "n-1", "timestamp": "t", "payload": rustore_encrypt(b"\x00\x01not json")}
    )

    with pytest.raises(WebhookDecryptError, match="not JSON"):
        read_notification(body.encode(), WebhookCipher(KEY_B64))


@pytest.mark.parametrize("key", ["", "short", base64.b64encode(b"k" * 16).decode()])
def test_cipher_refuses_a_key_that_is_not_aes256(key: str) -> None:
    with pytest.raises(ValueError, match="webhook key"):
        WebhookCipher(key)


def test_read_notification_end_to_end() -> None:
    data = {
        "invoice_id": "123",
        "purchase_id": "uuid-1",
        "status_new": "CONFIRMED",
        "status_old": "PAID",
    }
    payload = rustore_encrypt(notification("INVOICE_STATUS_SANDBOX", data))
    body = json.dumps({"id": "notif-1", "timestamp": "2025-04-01T12:00:00Z", "payload": payload})

    envelope, parsed = read_notification(body.encode(), WebhookCipher(KEY_B64))

    assert envelope.id == "notif-1"
    assert isinstance(parsed, InvoiceStatusNotification)
    assert parsed.sandbox
    assert parsed.notification_type is NotificationType.INVOICE_STATUS_SANDBOX
    assert parsed.data.new_status is InvoiceStatus.CONFIRMED


@pytest.mark.parametrize("body", [b"not json", b'{"id": "1"}', b"[]"])
def test_bad_outer_body_is_a_format_error(body: bytes) -> None:
    with pytest.raises(WebhookFormatError):
        read_notification(body, WebhookCipher(KEY_B64))


@pytest.mark.parametrize(
    ("kind", "cls", "sandbox"),
    [
        ("INVOICE_STATUS", InvoiceStatusNotification, False),
        ("invoice_status_sandbox", InvoiceStatusNotification, True),
        ("SUBSCRIPTION_EVENT", SubscriptionEventNotification, False),
        ("SUBSCRIPTION_EVENT_SANDBOX", SubscriptionEventNotification, True),
        ("TEST_EVENT", TestEventNotification, False),
        ("TEST_EVENT_SANDBOX", TestEventNotification, True),
    ],
)
def test_every_documented_type_and_its_sandbox_variant(kind: str, cls: type, sandbox: bool) -> None:
    parsed = parse_notification(notification(kind, {"test": "TEST"}))

    assert type(parsed) is cls
    assert parsed.sandbox is sandbox


def test_subscription_event_fields() -> None:
    data = {
        "product_code": "monthly",
        "event_time": "2025-04-01T12:00:00Z",
        "subscription_event_type": "payment_failed",
        "status_new": "PAUSED",
        "status_old": "ACTIVE",
        "period_new": "GRACE",
        "period_old": "MAIN",
        "autorenewing": True,
        "invoice_id": "9",
        "purchase_id": "uuid-2",
        "developer_payload": "user-1",
    }

    parsed = parse_notification(notification("SUBSCRIPTION_EVENT", data))

    assert isinstance(parsed, SubscriptionEventNotification)
    assert parsed.data.event_type is SubscriptionEventType.PAYMENT_FAILED
    assert parsed.data.autorenewing is True
    assert parsed.data.period_new == "GRACE"


def test_data_given_as_an_object_is_accepted() -> None:
    raw = {"app_id": "12345", "notification_type": "TEST_EVENT", "data": {"test": "TEST"}}

    parsed = parse_notification(json.dumps(raw).encode())

    assert isinstance(parsed, TestEventNotification)
    assert parsed.app_id == 12345


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(UnknownNotificationTypeError, match="REFUND_EVENT") as caught:
        parse_notification(notification("REFUND_EVENT", {}))

    assert caught.value.notification_type == "REFUND_EVENT"


@pytest.mark.parametrize(
    "plaintext",
    [
        b'{"notification_type": "TEST_EVENT", "data": "{}"}',
        b'{"app_id": 1, "notification_type": "TEST_EVENT", "data": "{not json"}',
        b'{"app_id": 1, "notification_type": "INVOICE_STATUS", "data": "{\\"invoice_id\\": []}"}',
    ],
    ids=["no-app-id", "data-not-json", "data-wrong-type"],
)
def test_malformed_notification_is_a_format_error(plaintext: bytes) -> None:
    with pytest.raises(WebhookFormatError):
        parse_notification(plaintext)
