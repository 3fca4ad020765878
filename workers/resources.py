"""Clients a worker process shares between its actors, made on first use.

One RuStore client per process means one HTTP connection pool and one cached access token,
however many actor modules call RuStore.
"""

from __future__ import annotations

from functools import cache

from core.integrations import rustore_client
from core.rustore import RuStoreClient
from workers.broker import settings


@cache
def rustore() -> RuStoreClient:
    return rustore_client(settings)
