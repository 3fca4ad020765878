"""What Dramatiq's worker processes load: the broker, then every actor module."""

from workers import diagnostics, notifications, purchases, subscriptions
from workers.broker import broker
from workers.signals import tolerate_duplicate_stop_signal

tolerate_duplicate_stop_signal()

__all__ = ["broker", "diagnostics", "notifications", "purchases", "subscriptions"]
