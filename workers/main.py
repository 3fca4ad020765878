"""What `dramatiq workers.main` loads: the broker, then every actor module."""

from workers import diagnostics
from workers.broker import broker

__all__ = ["broker", "diagnostics"]
