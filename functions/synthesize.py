"""POST /api/synthesize — ``{text, voice, format, speed}`` → a synthesis job.

``202`` with ``{id, status, status_url, audio_url, …}`` while it runs (``Location`` names the job);
``200`` once finished — at once on a cache hit, or within ``?wait=S`` seconds (at most ``MAX_WAIT_S``).
``audio_url`` is set when the job has succeeded.
"""

from starlette.concurrency import run_in_threadpool

from runtime.callers import caller_of
from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import errors, json_content
from runtime.speech.audio import FORMATS
from runtime.speech.request import from_synthesize
from runtime.speech.service import job_view
from storage.models import ACTIVE_STATES


def _wait_seconds(request, limit: float) -> float:
    raw = request.query_params.get("wait")
    if raw is None:
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise InvalidInput(f"'wait' must be a number of seconds, got {raw!r}", code="invalid_wait") from None
    if not 0 <= wait <= limit:
        raise InvalidInput(f"'wait' must be between 0 and {limit:g} seconds, got {raw}", code="invalid_wait")
    return wait


def _openapi(settings) -> dict:
    job = {"$ref": "#/components/schemas/Job"}
    location = {"Location": {"description": "the job's status URL", "schema": {"type": "string"}}}
    return {
        "summary": "Start a synthesis job (long text welcome); optionally wait for it",
        "tags": ["Jobs"],
        "parameters": [{"name": "wait", "in": "query", "required": False,
                        "description": "seconds to wait for the job before answering 202",
                        "schema": {"type": "number", "minimum": 0, "maximum": settings.max_wait_s}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": settings.max_job_text_chars,
                         "description": "text or SSML; split at sentences and synthesised chunk by chunk"},
                "voice": {"type": "string", "nullable": True, "description": "a voice id (GET /api/voices)"},
                "format": {"type": "string", "enum": [*FORMATS, None], "nullable": True, "default": "wav"},
                "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "default": 1.0, "nullable": True},
            }}}}},
        "responses": {"200": {**json_content(job, "The job has finished (or the audio was cached)"),
                              "headers": location},
                      "202": {**json_content(job, "The job is queued or running"), "headers": location},
                      **errors(429, 503)},
    }


@function(route="/api/synthesize", methods=["POST"], timeout_s=3600, max_body=1_000_000, openapi=_openapi)
async def synthesize(request, ctx):
    wait = _wait_seconds(request, ctx.settings.max_wait_s)
    req = from_synthesize(await read_json(request), ctx.catalog, ctx.settings.max_job_text_chars)
    key = ctx.speech.cached(req)
    if key is not None:
        job = await run_in_threadpool(ctx.speech.record_hit, req, key)
    else:
        job, _ = await run_in_threadpool(ctx.speech.submit, req, caller_of(request))
        if wait > 0 and job.status in ACTIVE_STATES:
            job = await ctx.speech.wait(job.id, wait)
    view = job_view(job)
    status = 202 if job.status in ACTIVE_STATES else 200
    return json_response(view, status, headers={"location": view["status_url"]})
