"""Rendering /ops pages: the template engine and its filters, the common page context, the
one-shot messages shown after an action, and errors as HTML pages instead of problem documents.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from jinja2 import StrictUndefined
from litestar import Request
from litestar.params import QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.response import Redirect, Response, Template
from litestar.template.config import TemplateConfig

from api.errors import problem_details_plugin
from api.ops.auth import OPS_PATH, LoginRequired, operator_of
from core.errors import InvalidRequestError, invalid_field
from core.ops import search

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
FLASH_KEY = "flash"
SEARCH_RESULTS = 50
SearchText = Annotated[str | None, QueryParameter(name="q", max_length=search.QUERY_MAX)]
StateFilter = Annotated[str | None, QueryParameter(name="state")]  # `state` is Litestar's own
E = TypeVar("E", bound=StrEnum)

NAV = (
    ("/ops", "Overview"),
    ("/ops/dead-letters", "Dead letters"),
    ("/ops/purchases", "Purchases"),
    ("/ops/subscriptions", "Subscriptions"),
    ("/ops/notifications", "Notifications"),
    ("/ops/users", "Users"),
    ("/ops/audit", "Audit log"),
)


def page(
    request: Request[Any, Any, Any], template: str, *, status_code: int = 200, **context: Any
) -> Template:
    """A page with the layout's context: who is logged in, the navigation, the last message."""
    session = request.scope.get("session")
    flash = session.pop(FLASH_KEY, None) if isinstance(session, dict) else None
    return Template(
        template_name=template,
        context={**_layout(request), "flash": flash, **context},
        status_code=status_code,
    )


def _layout(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"operator": operator_of(request), "nav": NAV, "path": request.url.path, "flash": None}


async def search_page(
    request: Request[Any, Any, Any], template: str, found: Awaitable[Sequence[Any]], **context: Any
) -> Template:
    """A search's page: its newest `SEARCH_RESULTS` rows, or none and the reason its terms were
    refused, shown above the empty list (400)."""
    error: str | None = None
    try:
        rows = await found
    except InvalidRequestError as exc:
        rows, error = [], exc.detail
    return page(
        request,
        template,
        status_code=400 if error else 200,
        rows=rows,
        error=error,
        limit=SEARCH_RESULTS,
        **context,
    )


def done(request: Request[Any, Any, Any], message: str, to: str) -> Redirect:
    """After an action: say what happened on the next page (post, redirect, get)."""
    request.session[FLASH_KEY] = message
    return Redirect(path=to, status_code=303)


def choice(kind: type[E], value: str | None, field: str) -> E | None:
    """A select box's value: empty is "any", anything unknown a clear 400."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        raise invalid_field(field, f"one of {', '.join(kind)}") from None


def safe_next(target: str | None) -> str:
    """Where to go after login: a dashboard path only, never another site."""
    if target and target.startswith(OPS_PATH) and not target.startswith("//"):
        return target
    return OPS_PATH


# Errors ------------------------------------------------------------------------------------------

_TO_PROBLEM = problem_details_plugin().config.exception_to_problem_detail_map


def _as_problem(exc: Exception) -> ProblemDetailsException:
    """The problem the json api would answer: same status, code and wording, same logging."""
    if isinstance(exc, ProblemDetailsException):
        return exc
    convert = next(_TO_PROBLEM[cls] for cls in type(exc).__mro__ if cls in _TO_PROBLEM)
    problem: ProblemDetailsException = convert(exc)
    return problem


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    problem = _as_problem(exc)
    extra = problem.extra if isinstance(problem.extra, dict) else {}
    return Template(
        template_name="error.html",
        context={
            **_layout(request),
            "status": problem.status_code,
            "title": problem.title,
            "detail": problem.detail,
            "code": extra.get("code"),
        },
        status_code=problem.status_code,
        headers=problem.headers,
    )


def to_login(request: Request[Any, Any, Any], _: LoginRequired) -> Response[Any]:
    """No session: to the login form, coming back to this page (a GET) afterwards."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = back if request.method == "GET" else OPS_PATH
    return Redirect(path=f"{OPS_PATH}/login?next={quote(target)}", status_code=303)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    LoginRequired: to_login,
    ProblemDetailsException: error_page,
    **dict.fromkeys(_TO_PROBLEM, error_page),
}


# Templates ---------------------------------------------------------------------------------------


def when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def when_precisely(value: dt.datetime) -> str:
    """To the millisecond: a purchase's steps often share a second."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def age(seconds: float | None) -> str:
    """3 s, 4 min 10 s, 2 h 5 min, 3 d 4 h: as precise as anyone reading a dashboard needs."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if whole >= size or (name == "s" and not parts):
            parts.append(f"{whole // size} {name}")
            whole %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _configure(engine: JinjaTemplateEngine) -> None:
    # A name a template uses but the page does not give (a renamed field, say) is an error that
    # tests catch, not an empty cell nobody notices.
    engine.engine.undefined = StrictUndefined
    engine.engine.filters.update(
        when=when, when_precisely=when_precisely, age=age, ms=ms, as_json=as_json
    )


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure
    )
