"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from redis.asyncio import Redis

from api.accounts.authentication import (
    SECURITY_COMPONENTS,
    authentication_middleware,
)
from api.accounts.controllers import AuthController, UserController
from api.admin.controllers import AuditController
from api.catalogue.controllers import CatalogueAdminController, CatalogueController
from api.deps import provide_db_session, provide_settings
from api.diagnostics.controllers import DiagnosticsController
from api.errors import problem_details_plugin
from api.health import HealthController
from api.jobs import JobSender
from api.metrics import MetricsController
from api.openapi import StrictStructSchemaPlugin
from api.ops.auth import ops_stores
from api.ops.pages import template_config
from api.ops.router import ops_routes
from api.points.controllers import PointsAdminController, PointsController
from api.protection import (
    ApiRequest,
    WindowCounter,
    client_address,
    cors_config,
    edge_middleware,
)
from api.purchases.controllers import PurchasesController
from api.request_context import RequestContext
from api.subscriptions.controllers import SubscriptionsAdminController, SubscriptionsController
from api.webhooks.controllers import NotificationsAdminController, WebhooksController
from core import metrics
from core.db import create_engine, create_sessionmaker
from core.garbage_collection import settle_after_startup
from core.integrations import rustore_client
from core.logging import configure_logging
from core.purchases.service import FirstSubmissions
from core.queue import AsyncEnqueuer, create_broker
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    # Made here, not in the lifespan, because the dashboard's session store must exist when the
    # app does; rate limits and job sends use it too.
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )

    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.first_submissions = FirstSubmissions(engine)
        app.state.redis = redis
        app.state.window_counter = WindowCounter(redis)
        app.state.broker = create_broker(settings.redis_url, socket_timeout=settings.redis_timeout)
        app.state.job_sender = JobSender(AsyncEnqueuer(app.state.broker, redis))
        # One RuStore client for the process: one connection pool, one cached access token.
        app.state.rustore = rustore_client(settings)
        try:
            yield
        finally:
            app.state.broker.close()
            await app.state.rustore.aclose()
            await redis.aclose()
            await engine.dispose()
            metrics.mark_process_dead()

    return Litestar(
        route_handlers=[
            HealthController,
            MetricsController,
            AuthController,
            UserController,
            DiagnosticsController,
            CatalogueController,
            CatalogueAdminController,
            PurchasesController,
            PointsController,
            PointsAdminController,
            WebhooksController,
            NotificationsAdminController,
            SubscriptionsController,
            SubscriptionsAdminController,
            AuditController,
            *ops_routes(settings),
        ],
        lifespan=[resources],
        dependencies={
            "db_session": Provide(provide_db_session),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "client_address": Provide(client_address, sync_to_thread=False),
        },
        middleware=[*edge_middleware(settings), authentication_middleware(settings)],
        stores=ops_stores(redis),  # the dashboard's sessions
        template_config=template_config(),
        cors_config=cors_config(settings),
        request_max_body_size=settings.max_body_bytes,
        request_class=ApiRequest,
        plugins=[problem_details_plugin(), StrictStructSchemaPlugin()],
        logging_config=None,  # core.logging configures every process the same way
        openapi_config=OpenAPIConfig(
            title="Kopilka",
            version="0.1.0",
            description="Self-hosted payment processor for apps sold through RuStore.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(path="/")],
            components=SECURITY_COMPONENTS,
        ),
    )


def create_asgi_app() -> RequestContext:
    """What the server runs: the app wrapped so every response carries a request id, built
    before the garbage collector is settled (core.garbage_collection)."""
    settings = get_settings()
    configure_logging("api", settings.log_level)
    app = RequestContext(create_app(settings))
    settle_after_startup()
    return app
