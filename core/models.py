"""Every table's model, imported in one place so Alembic and tests see the whole schema."""

from core.accounts.models import RefreshToken, User
from core.audit.models import AuditEntry
from core.catalogue.models import Product
from core.db import Base
from core.diagnostics.models import DiagnosticPing
from core.idempotency.models import IdempotencyRecord
from core.notifications.models import RuStoreNotification
from core.points.models import LedgerEntry, PointsAccount
from core.purchases.models import Purchase, PurchaseEvent, PurchaseIntent
from core.scheduling.models import ScheduledRun
from core.subscriptions.models import Subscription

__all__ = [
    "AuditEntry",
    "Base",
    "DiagnosticPing",
    "IdempotencyRecord",
    "LedgerEntry",
    "PointsAccount",
    "Product",
    "Purchase",
    "PurchaseEvent",
    "PurchaseIntent",
    "RefreshToken",
    "RuStoreNotification",
    "ScheduledRun",
    "Subscription",
    "User",
]
