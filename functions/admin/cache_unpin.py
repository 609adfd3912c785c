"""DELETE /api/admin/cache/pins/{key} — unpin a phrase (eviction may drop it again)."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput, NotFound
from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of
from storage.cache import KEY_RE
from storage.models import CachePin

OPENAPI = admin_operation("Unpin a phrase", "admin", statuses=(400, 404), parameters=[
    {"name": "key", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}],
    answer={"type": "object"})


def _unpin(request, key: str) -> None:
    if not CachePin.delete().where(CachePin.key == key).execute():
        raise NotFound(f"{key} is not pinned", code="not_pinned")
    audit.record(actor_of(request), client_address(request.scope), "cache.unpin", audit.SUCCESS, key)


@function(route="/api/admin/cache/pins/{key}", methods=["DELETE"], auth="admin", openapi=OPENAPI)
async def admin_cache_unpin(request, ctx):
    key = request.path_params["key"]
    if not KEY_RE.match(key):
        raise InvalidInput("a cache key is 64 lowercase hex characters", code="invalid_key")
    await run_in_threadpool(_unpin, request, key)
    return json_response({"unpinned": key})
