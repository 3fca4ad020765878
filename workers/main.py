"""What `dramatiq workers.main` loads: the broker, then every actor module."""

from workers import diagnostics, purchases
from workers.broker import broker

__all__ = ["broker", "diagnostics", "purchases"]
