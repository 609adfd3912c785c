"""Turning rendered audio into an HTTP response with the engine headers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from runtime.serving import AudioServer
from runtime.speech.service import Rendered


def audio_response(request: Request, server: AudioServer, audio: Rendered) -> Response:
    headers = {"x-tts-engine": audio.engine, "x-tts-fallback": "true" if audio.fallback else "false",
               "x-cache": "hit" if audio.cache_hit else "miss"}
    if audio.job_id:
        headers["x-job-id"] = audio.job_id
    return server.response(request, audio.key, audio.format, headers=headers, allow_accel=False)
