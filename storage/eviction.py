"""Cache eviction: keep the audio cache under ``CACHE_MAX_BYTES`` and drop entries unused for
``CACHE_TTL_DAYS``, least recently used first (``last_access_at``, which hits update in batches).

Never evicted: pinned phrases (``cache_pins``), the audio of a queued or running job, and the sentences of a
running job (``jobs.chunk_keys``). Also removed: files without an index row (orphans: a crash between the
write and the index, or a row deleted by hand) once they are older than the oldest unfinished job and
``ORPHAN_GRACE_S`` — sentence rows of a running job are written when it ends — and rows whose file is gone.
When the cap is passed, eviction goes down to ``LOW_WATERMARK`` of it, so it does not run again at the next
write. When the volume itself is nearly full (``MIN_FREE_BYTES``), it frees a fifth of the cache. Each row
is deleted before its file: a reader never finds a row whose file is being removed.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Callable

from storage.cache import KEY_RE, AudioCache
from storage.models import ACTIVE_STATES, CacheEntry, CachePin, Job, utcnow

LOW_WATERMARK = 0.9
ORPHAN_GRACE_S = 600
MIN_FREE_BYTES = 16 * 1024 * 1024  # with less free on the volume (or half of a tiny one), eviction frees a fifth
# of the cache whatever the cap: the disk filled up with other things, or the cap was set above the volume
_BATCH = 500


def protected_keys() -> set[str]:
    keys = {pin.key for pin in CachePin.select(CachePin.key)}
    for job in Job.select(Job.key, Job.audio_key, Job.chunk_keys).where(Job.status.in_(ACTIVE_STATES)):
        keys.add(job.key)
        if job.audio_key:
            keys.add(job.audio_key)
        if job.chunk_keys:
            keys.update(job.chunk_keys.split(","))
    return keys


def evict(cache: AudioCache, max_bytes: int, ttl_days: float,
          forget: Callable[[str, str], None] = lambda key, fmt: None) -> dict:
    """One eviction pass; returns its figures."""
    now = utcnow()
    keep = protected_keys()
    figures = {"expired": 0, "evicted": 0, "orphan_files": 0, "orphan_rows": 0, "bytes_freed": 0}

    def drop(rows: list[CacheEntry], reason: str) -> None:
        if not rows:
            return
        CacheEntry.delete().where(CacheEntry.key.in_([r.key for r in rows])).execute()
        for row in rows:
            (cache.root / row.path).unlink(missing_ok=True)
            forget(row.key, row.format)
            figures["bytes_freed"] += row.size_bytes
        figures[reason] += len(rows)

    columns = (CacheEntry.key, CacheEntry.format, CacheEntry.path, CacheEntry.size_bytes)
    if ttl_days > 0:
        stale = [r for r in CacheEntry.select(*columns).where(
            CacheEntry.last_access_at < now - dt.timedelta(days=ttl_days)) if r.key not in keep]
        for start in range(0, len(stale), _BATCH):
            drop(stale[start:start + _BATCH], "expired")

    rows = {r.key: r for r in CacheEntry.select(*columns)}
    missing = [r for r in rows.values() if not (cache.root / r.path).exists()]
    if missing:
        CacheEntry.delete().where(CacheEntry.key.in_([r.key for r in missing])).execute()
        figures["orphan_rows"] = len(missing)
        for r in missing:
            rows.pop(r.key)

    oldest = Job.select(Job.created_at).where(Job.status.in_(ACTIVE_STATES)).order_by(Job.created_at).first()
    cutoff = time.time() - ORPHAN_GRACE_S
    if oldest is not None:
        cutoff = min(cutoff, oldest.created_at.replace(tzinfo=dt.UTC).timestamp())
    for path in cache.root.glob("*/*"):
        name = path.name
        key = name.split(".", 1)[0]
        if (key in rows and rows[key].path == f"{path.parent.name}/{name}") or key in keep:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if stat.st_mtime < cutoff and (KEY_RE.match(key) or name.startswith(".tmp-")):
            path.unlink(missing_ok=True)
            if KEY_RE.match(key):
                forget(key, name.split(".", 1)[-1])
            figures["orphan_files"] += 1
            figures["bytes_freed"] += stat.st_size

    total = sum(r.size_bytes for r in rows.values())
    usage = shutil.disk_usage(cache.root)
    if usage.free < min(MIN_FREE_BYTES, usage.total // 2):
        max_bytes = min(max_bytes, int(total * 0.8 / LOW_WATERMARK))  # the volume is full: make room
        figures["volume_full"] = True
    if total > max_bytes:
        target = int(max_bytes * LOW_WATERMARK)
        victims: list[CacheEntry] = []
        for row in CacheEntry.select(*columns).order_by(CacheEntry.last_access_at, CacheEntry.key):
            if total <= target:
                break
            if row.key in keep:
                continue
            victims.append(row)
            total -= row.size_bytes
        for start in range(0, len(victims), _BATCH):
            drop(victims[start:start + _BATCH], "evicted")
    figures["bytes"] = sum(r.size_bytes for r in CacheEntry.select(CacheEntry.size_bytes))
    figures["entries"] = CacheEntry.select().count()
    figures["pinned"] = CachePin.select().count()
    return figures

