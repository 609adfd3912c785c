"""Serving cached audio fast. Files are immutable (content-addressed), so small ones are kept in memory
(an LRU bounded in bytes) and answered without a thread hop; Starlette's ``FileResponse`` streams in
thread-pool chunks and measured ~20 times slower than nginx here. Behind nginx, ``ACCEL_REDIRECT_PREFIX``
hands the file to nginx (``X-Accel-Redirect``) instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import ApiError, NotFound
from runtime.speech.audio import CONTENT_TYPES
from storage.cache import AudioCache

IMMUTABLE = "public, max-age=31536000, immutable"


class _Lru:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        with self._lock:
            data = self._items.get(name)
            if data is not None:
                self._items.move_to_end(name)
            return data

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            if name in self._items or len(data) > self.max_bytes:
                return
            self._items[name] = data
            self.bytes += len(data)
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= len(old)


class AudioServer:
    def __init__(self, cache: AudioCache, memory_bytes: int, file_max_bytes: int, accel_prefix: str = "") -> None:
        self.cache = cache
        self.memory = _Lru(memory_bytes)
        self.file_max_bytes = file_max_bytes
        self.accel_prefix = accel_prefix.rstrip("/")

    def _load(self, key: str, fmt: str) -> bytes:
        name = f"{key}.{fmt}"
        data = self.memory.get(name)
        if data is not None:
            return data
        try:
            with open(self.cache.path(key, fmt), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise NotFound(f"no audio {name} in the cache", code="audio_not_found") from None
        if not data:
            raise NotFound(f"no audio {name} in the cache", code="audio_not_found")
        if len(data) <= self.file_max_bytes:
            self.memory.put(name, data)
        return data

    def response(self, request: Request, key: str, fmt: str, headers: dict[str, str] | None = None,
                 allow_accel: bool = True) -> Response:
        """The cached file as a response: ETag, immutable caching, conditional and Range requests."""
        etag = f'"{key}.{fmt}"'
        base = {"etag": etag, "cache-control": IMMUTABLE, "accept-ranges": "bytes", **(headers or {})}
        if request.headers.get("if-none-match") in (etag, "*"):
            if not self.cache.exists(key, fmt):
                raise NotFound(f"no audio {key}.{fmt} in the cache", code="audio_not_found")
            return Response(status_code=304, headers=base)
        media_type = CONTENT_TYPES[fmt]
        if allow_accel and self.accel_prefix and "range" not in request.headers:
            if not self.cache.exists(key, fmt):
                raise NotFound(f"no audio {key}.{fmt} in the cache", code="audio_not_found")
            base["x-accel-redirect"] = f"{self.accel_prefix}/{self.cache.relpath(key, fmt)}"
            return Response(b"", media_type=media_type, headers=base)
        data = self._load(key, fmt)
        byte_range = request.headers.get("range")
        if byte_range and request.headers.get("if-range", etag) == etag:
            span = _parse_range(byte_range, len(data))
            if span is None:
                raise ApiError(f"range {byte_range!r} is not satisfiable for {len(data)} bytes",
                               code="range_not_satisfiable", status=416,
                               headers={"content-range": f"bytes */{len(data)}"})
            start, end = span
            base["content-range"] = f"bytes {start}-{end}/{len(data)}"
            return Response(data[start:end + 1], status_code=206, media_type=media_type, headers=base)
        return Response(data, media_type=media_type, headers=base)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range → inclusive (start, end); None when unsatisfiable or not understood.
    Several ranges are answered with the first one's span rule applied to the whole request (rare for audio)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                return None
            return max(0, size - length), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return None
    return start, min(end, size - 1)
