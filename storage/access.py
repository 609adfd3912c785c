"""Cache hits recorded for LRU eviction without a write per hit: keys seen are kept in memory and written
together (``last_access_at``) every ``flush_s`` seconds by a daemon thread, and at shutdown."""

from __future__ import annotations

import threading

from loguru import logger

from storage.cache import KEY_RE
from storage.models import CacheEntry, utcnow

BATCH = 500


class AccessRecorder:
    def __init__(self, flush_s: float = 30.0) -> None:
        self.flush_s = flush_s
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def touch(self, key: str) -> None:
        self._seen.add(key)  # one set insertion: cheap enough for the cached-audio path

    def touch_path(self, path: str) -> None:
        """A hit of the edge micro-cache: ``/audio/<key>.<ext>``."""
        if path.startswith("/audio/") and KEY_RE.match(path[7:71]):
            self._seen.add(path[7:71])

    def flush(self) -> int:
        seen, self._seen = self._seen, set()
        keys = list(seen)
        now = utcnow()
        for start in range(0, len(keys), BATCH):
            CacheEntry.update(last_access_at=now).where(CacheEntry.key.in_(keys[start:start + BATCH])).execute()
        return len(keys)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.flush_s):
                try:
                    self.flush()
                except Exception as exc:  # the database is away: try again next time
                    logger.warning("could not record cache hits: {}", exc)

        self._thread = threading.Thread(target=loop, name="cache-access", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self.flush()
        except Exception as exc:
            logger.warning("could not record cache hits at shutdown: {}", exc)
