"""Turning rendered audio into an HTTP response with the engine headers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from runtime.serving import AudioServer
from runtime.speech.service import Rendered


def engine_headers(engine: str, fallback: bool, cache_hit: bool, job_id: str | None) -> dict[str, str]:
    """Who spoke, whether as a fallback, whether from the cache, and the job: on every audio answer."""
    headers = {"x-tts-engine": engine, "x-tts-fallback": "true" if fallback else "false",
               "x-cache": "hit" if cache_hit else "miss"}
    if job_id:
        headers["x-job-id"] = job_id
    return headers


def audio_response(request: Request, server: AudioServer, audio: Rendered) -> Response:
    headers = engine_headers(audio.engine, audio.fallback, audio.cache_hit, audio.job_id)
    return server.response(request, audio.key, audio.format, headers=headers, allow_accel=False)
