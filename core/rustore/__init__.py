"""RuStore public API client, response models, errors and server-notification handling."""

from core.rustore.client import CallObserver, RuStoreClient
from core.rustore.config import RuStoreConfig
from core.rustore.errors import (
    Outcome,
    RuStoreAuthError,
    RuStoreError,
    RuStoreNotFound,
    RuStorePermanentError,
    RuStoreTransientError,
    UnknownNotificationTypeError,
    WebhookDecryptError,
    WebhookError,
    WebhookFormatError,
)
from core.rustore.models import (
    InvoiceInfo,
    InvoicePage,
    InvoicePayment,
    SmartPaySubscription,
    SubscriptionPurchase,
)
from core.rustore.statuses import (
    InvoiceStatus,
    NotificationType,
    SubscriptionEventType,
    SubscriptionPeriod,
    SubscriptionState,
)
from core.rustore.webhook import (
    AnyNotification,
    InvoiceStatusNotification,
    SubscriptionEventNotification,
    TestEventNotification,
    WebhookCipher,
    WebhookEnvelope,
    read_notification,
)

__all__ = [
    "AnyNotification",
    "CallObserver",
    "InvoiceInfo",
    "InvoicePage",
    "InvoicePayment",
    "InvoiceStatus",
    "InvoiceStatusNotification",
    "NotificationType",
    "Outcome",
    "RuStoreAuthError",
    "RuStoreClient",
    "RuStoreConfig",
    "RuStoreError",
    "RuStoreNotFound",
    "RuStorePermanentError",
    "RuStoreTransientError",
    "SmartPaySubscription",
    "SubscriptionEventNotification",
    "SubscriptionEventType",
    "SubscriptionPeriod",
    "SubscriptionPurchase",
    "SubscriptionState",
    "TestEventNotification",
    "UnknownNotificationTypeError",
    "WebhookCipher",
    "WebhookDecryptError",
    "WebhookEnvelope",
    "WebhookError",
    "WebhookFormatError",
    "read_notification",
]
