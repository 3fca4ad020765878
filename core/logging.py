"""JSON logs for every process, with the request id carried in a context variable.

structlog renders both its own events and the standard library's (uvicorn, dramatiq, alembic), so
every line a process writes is one JSON object, and a line written while handling a request or a
job carries that request's id.
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

import structlog

REQUEST_ID_MAX_LENGTH = 128

_shared_processors: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.processors.StackInfoRenderer(),
    structlog.processors.format_exc_info,
]


def configure_logging(process: str, level: str = "INFO") -> None:
    """Route structlog and stdlib logging to one JSON line per event on stdout."""
    structlog.configure(
        processors=[
            # First: an event below the level is dropped before any work is done on it.
            structlog.stdlib.filter_by_level,
            *_shared_processors,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors,
            processors=[
                _add_process(process),
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One access line per request comes from our own middleware, with the request id.
    logging.getLogger("uvicorn.access").disabled = True
    # The scheduler logs each run itself (workers/scheduler.py); APScheduler's own INFO is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _add_process(process: str) -> structlog.types.Processor:
    def add(_: Any, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
        event.setdefault("process", process)
        return event

    return add


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_valid_request_id(value: str) -> bool:
    """Accept caller-supplied ids that are short and printable, so they are safe in logs."""
    return 0 < len(value) <= REQUEST_ID_MAX_LENGTH and all(
        ch.isascii() and (ch.isalnum() or ch in "-_.:") for ch in value
    )


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None
