"""The edge's micro-cache of immutable GET responses, through the real app in-process."""

from __future__ import annotations

import os

from starlette.testclient import TestClient

from runtime.app import create_app
from runtime.response_cache import ResponseCache
from runtime.settings import Settings


def test_immutable_audio_is_answered_from_the_edge_and_forgotten_on_eviction(tmp_path):
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us", wyoming_uri="off")
    app = create_app(settings)
    with TestClient(app) as c:
        services = app.ctx.services
        key = "cd" * 32
        services.cache.write(key, "wav", b"RIFF" + os.urandom(5000))
        url = f"/audio/{key}.wav"
        first = c.get(url)
        assert first.status_code == 200 and len(services.responses) == 1
        # Served from the edge: identical bytes and headers, its own request id.
        second = c.get(url)
        assert second.content == first.content
        assert second.headers["etag"] == first.headers["etag"]
        assert second.headers["x-request-id"] != first.headers["x-request-id"]
        # Range and conditional requests still reach the function.
        assert c.get(url, headers={"range": "bytes=0-3"}).content == b"RIFF"
        assert c.get(url, headers={"if-none-match": first.headers["etag"]}).status_code == 304
        # A query string is not cached (different URL semantics).
        assert c.get(url + "?x=1").status_code == 200 and len(services.responses) == 1
        # Eviction drops it everywhere: the next GET is a 404, not a ghost.
        services.cache.path(key, "wav").unlink()
        services.audio.forget(key, "wav")
        assert len(services.responses) == 0
        assert c.get(url).status_code == 404


def test_bounded_and_per_function():
    cache = ResponseCache(max_bytes=100)
    cache.store("/a", "f", 200, [], b"x" * 60)
    cache.store("/b", "g", 200, [], b"y" * 60)  # pushes /a out
    assert cache.get("/a") is None and cache.get("/b") is not None and cache.bytes == 60
    cache.store("/huge", "f", 200, [], b"z" * 101)
    assert cache.get("/huge") is None
    cache.store("/c", "f", 200, [], b"c")
    assert cache.forget_function("g") == 1 and cache.get("/b") is None and cache.get("/c") is not None
