"""Clients of outside services, configured from settings."""

from __future__ import annotations

from core.ops.activity import rustore_call_observer
from core.rustore import CallObserver, RuStoreClient, RuStoreConfig
from core.settings import Settings


def rustore_config(settings: Settings) -> RuStoreConfig:
    return RuStoreConfig(
        key_id=settings.rustore_key_id,
        private_key=settings.rustore_private_key,
        app_id=settings.rustore_app_id,
        package_name=settings.rustore_package_name,
        api_url=settings.rustore_api_url,
        read_timeout=settings.rustore_timeout,
    )


def rustore_client(settings: Settings, observer: CallObserver | None = None) -> RuStoreClient:
    """A client whose calls are counted in /metrics and the ops overview, unless `observer`
    says otherwise."""
    return RuStoreClient(
        rustore_config(settings), observer=observer or rustore_call_observer(settings)
    )
