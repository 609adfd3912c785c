"""An in-process micro-cache of immutable GET responses, as a reverse proxy would keep.

A function marks a response ``immutable = True`` (the cached-audio function does: content-addressed
files never change). The first GET goes through the function; the edge then answers later plain GETs of
the same path from here, skipping routing and the handler: on the cached-audio benchmark this is the
difference between ~0.2x and ~0.4x+ of nginx's requests/s. Range and conditional requests always reach
the function. Entries are dropped when the file is evicted or the function is redeployed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from runtime.lru import SizedLru


@dataclass(frozen=True, slots=True)
class CachedResponse:
    function: str
    status: int
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes


class ResponseCache:
    def __init__(self, max_bytes: int) -> None:
        self._lru: SizedLru[CachedResponse] = SizedLru(max_bytes, lambda item: len(item.body))
        self.on_hit: Callable[[str], None] | None = None  # told of every hit (cache eviction's LRU)

    def get(self, path: str) -> CachedResponse | None:
        item = self._lru.get(path)
        if item is not None and self.on_hit is not None:
            self.on_hit(path)
        return item

    def store(self, path: str, function: str, status: int, raw_headers: list[tuple[bytes, bytes]],
              body: bytes) -> None:
        self._lru.put(path, CachedResponse(function, status, raw_headers, body))

    def discard_where(self, predicate: Callable[[str, CachedResponse], bool]) -> int:
        return self._lru.discard_where(predicate)

    def forget_function(self, name: str) -> int:
        """Drop every response a function produced (on redeploy or rollback of that function)."""
        return self.discard_where(lambda _path, item: item.function == name)

    @property
    def bytes(self) -> int:
        return self._lru.bytes

    def __len__(self) -> int:
        return len(self._lru)
