"""JSON logs for every process, with the request id carried in a context variable.

Every line a process writes is one JSON object, and a line written while handling a request or a
job carries that request's id. structlog's own events (ours) are rendered and written by structlog
directly; the standard library's (uvicorn, dramatiq, alembic, httpx) go through a logging handler
that renders them the same way. Ours skip the standard library because its record, handler and
formatter cost more than the event itself: 25 µs a line against 7, on every request and job.
"""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

import msgspec
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
    render: list[structlog.types.Processor] = [
        _add_process(process),
        structlog.processors.JSONRenderer(serializer=_to_json),
    ]
    structlog.configure(
        # First: an event below the level is dropped before any work is done on it. A processor,
        # not the bound logger's own level, so that structlog's capture_logs sees every level.
        processors=[_at_least(level), *_shared_processors, *render],
        wrapper_class=structlog.make_filtering_bound_logger(logging.NOTSET),
        logger_factory=NamedWriteLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render],
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


class NamedWriteLogger(structlog.WriteLogger):
    """structlog's line writer on stdout, named as `structlog.get_logger(name)` asked, which
    `add_logger_name` writes into the line as `logger`."""

    def __init__(self, name: str = "") -> None:
        super().__init__(sys.stdout)
        self.name = name


_json = msgspec.json.Encoder(enc_hook=repr)  # anything msgspec cannot encode, as its repr


def _to_json(event: structlog.types.EventDict, **_: Any) -> str:
    """One JSON line, the event's name first, as a reader scans for it."""
    return _json.encode({"event": event.pop("event", None), **event}).decode()


def _at_least(level: str) -> structlog.types.Processor:
    lowest = logging.getLevelName(level.upper())

    def drop_below(_: Any, method_name: str, event: structlog.types.EventDict) -> Any:
        if structlog.processors.NAME_TO_LEVEL[method_name] < lowest:
            raise structlog.DropEvent
        return event

    return drop_below


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
