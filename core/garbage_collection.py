"""The garbage collector's settings for the processes that serve load: the api and the workers.

CPython's defaults suit a short script. A server first builds a large, permanent object graph
(modules, the Litestar app and its routes, SQLAlchemy's mappers, Dramatiq's actors: about
170,000 tracked objects in the api), then makes thousands of short-lived objects per request,
nearly all freed at once by reference counting. With the defaults, the youngest generation is
collected every 700 net allocations, which 32 requests in flight reach many times a second, and
every full collection walks the whole permanent graph again (about 60 ms in the api). Together
that was about a tenth of the api's CPU per accepted purchase (docs/performance.md).
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000
"""Net allocations between collections of the youngest generation (CPython's default: 700).
Only objects in reference cycles wait for a collection, so this bounds how many can pile up."""


def settle_after_startup() -> None:
    """Call once startup is done: collect what startup left behind, move everything still alive
    to the permanent generation (no later collection walks it), and collect the young generation
    less often. The older generations keep their default thresholds."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)
