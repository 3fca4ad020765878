"""The worker process's broker, built once from settings and made Dramatiq's global broker."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from core.logging import configure_logging
from core.queue import create_broker
from core.settings import load_settings_or_exit

settings = load_settings_or_exit()
configure_logging("worker", settings.log_level)
broker: RedisBroker = create_broker(settings.redis_url, socket_timeout=settings.redis_timeout)
dramatiq.set_broker(broker)
