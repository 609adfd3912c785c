"""GET /api/admin/users — the admins (name, disabled, TOTP enrolled, dates)."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import admins
from storage.models import Admin

OPENAPI = admin_operation("The admins", "admin", answer={"type": "object", "required": ["admins"], "properties": {
    "admins": {"type": "array", "items": {"$ref": "#/components/schemas/Admin"}}}})


@function(route="/api/admin/users", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_users(request, ctx):
    rows = await run_in_threadpool(lambda: list(Admin.select().order_by(Admin.name)))
    return json_response({"admins": [admins.describe(row) for row in rows]})
