"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin
from redis.asyncio import Redis

from api.deps import provide_broker, provide_db_session
from api.diagnostics.controllers import DiagnosticsController
from api.errors import problem_details_plugin
from api.health import HealthController
from api.request_context import RequestContext
from core.db import create_engine, create_sessionmaker
from core.logging import configure_logging
from core.queue import create_broker
from core.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()

    @asynccontextmanager
    async def resources(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.redis_timeout,
            socket_connect_timeout=settings.redis_timeout,
        )
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = redis
        app.state.broker = create_broker(settings.redis_url, socket_timeout=settings.redis_timeout)
        try:
            yield
        finally:
            app.state.broker.close()
            await redis.aclose()
            await engine.dispose()

    return Litestar(
        route_handlers=[HealthController, DiagnosticsController],
        lifespan=[resources],
        dependencies={
            "db_session": Provide(provide_db_session),
            "broker": Provide(provide_broker, sync_to_thread=False),
        },
        plugins=[problem_details_plugin()],
        logging_config=None,  # core.logging configures every process the same way
        openapi_config=OpenAPIConfig(
            title="Kopilka",
            version="0.1.0",
            description="Self-hosted payment processor for apps sold through RuStore.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(path="/")],
        ),
    )


def create_asgi_app() -> RequestContext:
    """What the server runs: the app wrapped so every response carries a request id."""
    settings = get_settings()
    configure_logging("api", settings.log_level)
    return RequestContext(create_app(settings))
