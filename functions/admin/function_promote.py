"""POST /api/admin/functions/{name}/promote — the canary serves every caller."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of

OPENAPI = admin_operation("Promote a function module's canary to 100%", "admin", statuses=(404, 409),
                          parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                          answer={"$ref": "#/components/schemas/FunctionModule"})


@function(route="/api/admin/functions/{name}/promote", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_function_promote(request, ctx):
    return json_response(await run_in_threadpool(ctx.deployments.promote, request.path_params["name"],
                                                 actor_of(request), client_address(request.scope)))
