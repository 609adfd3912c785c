"""GET /api/admin/me — who is logged in (an admin session, or an admin API key)."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import admins
from runtime.security.auth import principal_of

OPENAPI = admin_operation("Who is logged in", "admin", answer={"type": "object", "required": ["actor"], "properties": {
    "actor": {"type": "string"}, "admin": {"type": "object", "nullable": True}}})


@function(route="/api/admin/me", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_me(request, ctx):
    principal = principal_of(request)
    admin = None
    if principal.session is not None:
        admin = admins.describe(await run_in_threadpool(admins.get, principal.session.admin))
    return json_response({"actor": principal.actor, "admin": admin})
