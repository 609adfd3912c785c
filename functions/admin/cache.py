"""GET /api/admin/cache — the audio cache: size against its cap, entries, pinned phrases, the TTL."""

from peewee import fn
from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from storage.models import CacheEntry, CachePin

OPENAPI = admin_operation("The audio cache: size, cap, pinned phrases", "admin", answer={
    "type": "object", "required": ["bytes", "max_bytes", "entries", "pins"], "properties": {
        "bytes": {"type": "integer"}, "max_bytes": {"type": "integer"}, "entries": {"type": "integer"},
        "ttl_days": {"type": "number"}, "pins": {"type": "array", "items": {"type": "object"}}}})


def describe_pin(pin: CachePin) -> dict:
    return {"key": pin.key, "format": pin.format, "text": pin.text, "voice": pin.voice, "note": pin.note,
            "pinned_by": pin.pinned_by, "pinned_at": pin.pinned_at.isoformat() + "Z"}


def _summary(settings) -> dict:
    total = CacheEntry.select(fn.COALESCE(fn.SUM(CacheEntry.size_bytes), 0)).scalar()
    return {"bytes": int(total), "max_bytes": settings.cache_max_bytes, "entries": CacheEntry.select().count(),
            "ttl_days": settings.cache_ttl_days,
            "pins": [describe_pin(p) for p in CachePin.select().order_by(CachePin.pinned_at.desc())]}


@function(route="/api/admin/cache", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_cache(request, ctx):
    return json_response(await run_in_threadpool(_summary, ctx.settings))
