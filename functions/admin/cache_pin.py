"""POST /api/admin/cache/pins — pin a phrase so eviction never drops it: by ``key`` (and ``format``), or by
``text`` + ``voice`` + ``format`` (+ ``speed``), the way a caller would ask for it (announcements, doorbell
phrases). Pinning by text does not synthesise it; the first request does, and it stays."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of
from runtime.speech.audio import FORMATS
from runtime.speech.request import from_synthesize
from storage.cache import KEY_RE
from storage.models import CachePin

OPENAPI = admin_operation("Pin a phrase in the cache", "admin", ok="201", body={
    "type": "object", "properties": {
        "key": {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "format": {"type": "string", "enum": list(FORMATS)},
        "text": {"type": "string", "minLength": 1, "maxLength": 4096}, "voice": {"type": "string", "nullable": True},
        "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "nullable": True},
        "note": {"type": "string", "maxLength": 500}},
    "description": "either key (+ format) or text + voice + format (+ speed), not both"},
    answer={"type": "object", "required": ["key", "format"]})


def _pin(ctx, request, body: dict) -> dict:
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 500):
        raise InvalidInput("note is text of at most 500 characters", code="invalid_note")
    if "text" in body and "key" in body:
        raise InvalidInput("pin by key or by text + voice + format, not both", code="invalid_pin")
    if "text" in body:
        req = from_synthesize(body, ctx.catalog, ctx.settings.max_text_chars)
        key, fmt, text, voice, speed = ctx.speech.key(req), req.format, req.text, req.voice.id, req.speed
    else:
        key, fmt = body.get("key"), body.get("format", "wav")
        if not isinstance(key, str) or not KEY_RE.match(key) or fmt not in FORMATS:
            raise InvalidInput('send {"key": "<64 hex>", "format": "wav"} or {"text", "voice", "format"}',
                               code="invalid_pin")
        text = voice = speed = None
    CachePin.insert(key=key, format=fmt, text=text, voice=voice, speed=speed, note=note,
                    pinned_by=actor_of(request)).on_conflict(
        conflict_target=[CachePin.key], update={CachePin.note: note}).execute()
    audit.record(actor_of(request), client_address(request.scope), "cache.pin", audit.SUCCESS, key, format=fmt,
                 voice=voice)
    return {"key": key, "format": fmt, "text": text, "voice": voice, "note": note}


@function(route="/api/admin/cache/pins", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_cache_pin(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput('send {"key": …} or {"text": …, "voice": …, "format": …}', code="invalid_pin")
    return json_response(await run_in_threadpool(_pin, ctx, request, body), 201)
