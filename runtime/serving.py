"""Serving cached audio fast. Files are immutable (content-addressed), so small ones are kept in memory
(an LRU bounded in bytes) together with their ready-made response headers, and a plain GET is answered
without a thread hop or per-request header building. Starlette's ``FileResponse`` streams through
thread-pool chunks and measured ~20 times slower than nginx here. Behind nginx, ``ACCEL_REDIRECT_PREFIX``
hands the file to nginx (``X-Accel-Redirect``) instead.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import ApiError, NotFound
from runtime.lru import SizedLru
from runtime.response_cache import ResponseCache
from runtime.speech.audio import CONTENT_TYPES
from storage.cache import AudioCache

IMMUTABLE = "public, max-age=31536000, immutable"


class _File:
    """One cached file in memory: bytes and the 200 answer's headers, built once."""

    __slots__ = ("data", "etag", "raw_headers")

    def __init__(self, name: str, fmt: str, data: bytes) -> None:
        self.data = data
        self.etag = f'"{name}"'
        self.raw_headers = [
            (b"content-type", CONTENT_TYPES[fmt].encode()),
            (b"content-length", str(len(data)).encode()),
            (b"etag", self.etag.encode()),
            (b"cache-control", IMMUTABLE.encode()),
            (b"accept-ranges", b"bytes"),
        ]


class _Ready(Response):
    """A Starlette response whose header list is already built (``Response.__call__`` sends it as is).
    ``immutable``: the edge may keep it in its response cache (``runtime.response_cache``)."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]], immutable: bool) -> None:
        self.status_code = 200
        self.body = body
        self.raw_headers = raw_headers
        self.background = None
        self.immutable = immutable


def _special_headers(scope) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(range, if-none-match, if-range) from the raw request headers, in one pass."""
    rng = inm = ifr = None
    for name, value in scope["headers"]:
        if name == b"range":
            rng = value
        elif name == b"if-none-match":
            inm = value
        elif name == b"if-range":
            ifr = value
    return rng, inm, ifr


class AudioServer:
    def __init__(self, cache: AudioCache, memory_bytes: int, file_max_bytes: int, accel_prefix: str = "",
                 responses: ResponseCache | None = None) -> None:
        self.cache = cache
        self.memory: SizedLru[_File] = SizedLru(memory_bytes, lambda item: len(item.data))
        self.responses = responses
        self.file_max_bytes = file_max_bytes
        self.accel_prefix = accel_prefix.rstrip("/")
        self.touch: Callable[[str], None] = lambda key: None  # records the hit for eviction (storage.access)

    def forget(self, key: str, fmt: str) -> None:
        """Drop a file from memory (cache eviction calls this when it deletes the file)."""
        name = f"{key}.{fmt}"
        self.memory.discard_where(lambda path, _item: path == name)
        if self.responses is not None:
            self.responses.discard_where(lambda path, _item: path.endswith("/" + name))

    def _load(self, key: str, fmt: str) -> _File:
        name = f"{key}.{fmt}"
        item = self.memory.get(name)
        if item is not None:
            return item
        try:
            with open(self.cache.path(key, fmt), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise NotFound(f"no audio {name} in the cache", code="audio_not_found") from None
        if not data:
            raise NotFound(f"no audio {name} in the cache", code="audio_not_found")
        item = _File(name, fmt, data)
        if len(data) <= self.file_max_bytes:
            self.memory.put(name, item)
        return item

    def response(self, request: Request, key: str, fmt: str, headers: dict[str, str] | None = None,
                 allow_accel: bool = True) -> Response:
        """The cached file as a response: ETag, immutable caching, conditional and Range requests."""
        rng, inm, if_range = _special_headers(request.scope)
        self.touch(key)
        extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        etag = f'"{key}.{fmt}"'
        if inm is not None and inm.decode("latin-1") in (etag, "*"):
            if not self.cache.exists(key, fmt):
                raise NotFound(f"no audio {key}.{fmt} in the cache", code="audio_not_found")
            return Response(status_code=304, headers={"etag": etag, "cache-control": IMMUTABLE,
                                                      **(headers or {})})
        if allow_accel and self.accel_prefix and rng is None:
            if not self.cache.exists(key, fmt):
                raise NotFound(f"no audio {key}.{fmt} in the cache", code="audio_not_found")
            return Response(b"", media_type=CONTENT_TYPES[fmt], headers={
                "etag": etag, "cache-control": IMMUTABLE, "accept-ranges": "bytes", **(headers or {}),
                "x-accel-redirect": f"{self.accel_prefix}/{self.cache.relpath(key, fmt)}"})
        item = self._load(key, fmt)
        if rng is not None and (if_range is None or if_range.decode("latin-1") == etag):
            size = len(item.data)
            span = _parse_range(rng.decode("latin-1"), size)
            if span is None:
                raise ApiError(f"range {rng.decode('latin-1')!r} is not satisfiable for {size} bytes",
                               code="range_not_satisfiable", status=416, headers={"content-range": f"bytes */{size}"})
            start, end = span
            return Response(item.data[start:end + 1], status_code=206, media_type=CONTENT_TYPES[fmt], headers={
                "etag": etag, "cache-control": IMMUTABLE, "accept-ranges": "bytes", **(headers or {}),
                "content-range": f"bytes {start}-{end}/{size}"})
        if extra:
            return _Ready(item.data, item.raw_headers + extra, immutable=False)
        return _Ready(item.data, item.raw_headers, immutable=True)


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range → inclusive (start, end); None when unsatisfiable or not understood
    (several ranges at once are not served: rare for audio players)."""
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
