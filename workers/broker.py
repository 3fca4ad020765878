"""The worker process's broker, built once from settings and made Dramatiq's global broker."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from core.logging import configure_logging
from core.queue import create_broker
from core.settings import load_settings_or_exit

settings = load_settings_or_exit()
configure_logging("worker", settings.log_level)
# The RuStore client logs every request itself (method, status, latency, attempt); httpx's own
# INFO line per request would double the worker's log volume, all of it piped through Dramatiq's
# parent process.
logging.getLogger("httpx").setLevel(logging.WARNING)
broker: RedisBroker = create_broker(settings.redis_url, socket_timeout=settings.redis_timeout)
dramatiq.set_broker(broker)
