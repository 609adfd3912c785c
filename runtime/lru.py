"""A thread-safe LRU bounded by total size in bytes: ``cachetools.LRUCache`` with ``getsizeof`` and a lock
(cachetools itself is not thread-safe; eviction may run in another thread than the event loop)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import LRUCache

V = TypeVar("V")


class SizedLru(Generic[V]):
    def __init__(self, max_bytes: int, sizeof: Callable[[V], int]) -> None:
        self._cache: LRUCache = LRUCache(maxsize=max(1, max_bytes), getsizeof=sizeof)
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self._lock:
            return self._cache.get(key)

    def put(self, key: str, value: V) -> None:
        """Store, evicting least recently used entries; a value larger than the whole cache is not kept."""
        with self._lock:
            try:
                self._cache[key] = value
            except ValueError:  # larger than max_bytes
                self._cache.pop(key, None)

    def discard_where(self, predicate: Callable[[str, V], bool]) -> int:
        with self._lock:
            doomed = [key for key, value in self._cache.items() if predicate(key, value)]
            for key in doomed:
                del self._cache[key]
        return len(doomed)

    @property
    def bytes(self) -> int:
        return int(self._cache.currsize)

    def __len__(self) -> int:
        return len(self._cache)
