"""GET /api/admin/keys — the API keys (prefix, name, level, dates; never the key)."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security.keys import describe
from storage.models import ApiKey

OPENAPI = admin_operation("The API keys", "admin", answer={"type": "object", "required": ["keys"], "properties": {
    "keys": {"type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}}}})


@function(route="/api/admin/keys", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_keys(request, ctx):
    rows = await run_in_threadpool(lambda: list(ApiKey.select().order_by(ApiKey.created_at.desc())))
    return json_response({"keys": [describe(row) for row in rows]})
