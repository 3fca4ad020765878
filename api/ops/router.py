"""Everything under /ops, wired for the app: the pages' router, static files, session store."""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.static_files import create_static_files_router

from api.ops.audit import AuditController
from api.ops.auth import OPS_PATH, OPS_PUBLIC, ops_middleware
from api.ops.dead_letters import DeadLettersController
from api.ops.login import LoginController
from api.ops.notifications import NotificationsController
from api.ops.overview import OverviewController
from api.ops.pages import EXCEPTION_HANDLERS, STATIC
from api.ops.purchases import PurchasesController
from api.ops.subscriptions import SubscriptionsController
from api.ops.users import UsersController
from core.settings import Settings

SECURITY_HEADERS = [
    # Scripts and styles come from /ops/static only: no inline code can run, whatever a page shows.
    ResponseHeader(
        name="Content-Security-Policy",
        value="default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'",
    ),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
]


def ops_routes(settings: Settings) -> list[Router]:
    pages = Router(
        path="/",
        route_handlers=[
            LoginController,
            OverviewController,
            DeadLettersController,
            PurchasesController,
            SubscriptionsController,
            NotificationsController,
            UsersController,
            AuditController,
        ],
        middleware=ops_middleware(settings),
        exception_handlers=EXCEPTION_HANDLERS,
        response_headers=SECURITY_HEADERS,
        cache_control=CacheControlHeader(no_store=True),  # pages show customers' data
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=f"{OPS_PATH}/static",
        directories=[STATIC],
        opt=OPS_PUBLIC,
        cache_control=CacheControlHeader(max_age=300),
        include_in_schema=False,
    )
    return [pages, static]
