"""The cache eviction job (``storage.eviction``), after pinned phrases follow a changed model
(``scheduler.jobs.pins``). In embedded mode it also drops the evicted files from this
process's memory caches; a separate web process keeps an evicted file in memory until its LRU drops it (the
bytes are still right: cache files never change)."""

from __future__ import annotations

from scheduler.jobs.pins import rerender
from storage.cache import AudioCache
from storage.eviction import evict


def run(ctx) -> dict:
    s = ctx.settings
    services = ctx.services
    cache = services.cache if services is not None else AudioCache(s.cache_dir)
    forget = services.audio.forget if services is not None else (lambda key, fmt: None)
    if services is not None:
        services.accesses.flush()  # the latest hits count before choosing what to drop
    moved = rerender(ctx)  # pins follow a changed model first, so eviction keeps the new audio
    return {**evict(cache, s.cache_max_bytes, s.cache_ttl_days, forget), **moved}
