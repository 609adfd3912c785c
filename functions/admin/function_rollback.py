"""POST /api/admin/functions/{name}/rollback — end the canary, or serve the version that served before (or
``{"to": N}``) again. Instant: the previous versions stay loaded."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of

OPENAPI = admin_operation(
    "Roll a function module back", "admin", statuses=(404, 409, 422),
    parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
    body={"type": "object", "properties": {"to": {"type": "integer", "minimum": 1, "nullable": True}}},
    answer={"$ref": "#/components/schemas/FunctionModule"})


@function(route="/api/admin/functions/{name}/rollback", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_function_rollback(request, ctx):
    body = await read_json(request) if await request.body() else {}
    to = body.get("to") if isinstance(body, dict) else "bad"
    if to is not None and (not isinstance(to, int) or isinstance(to, bool) or to < 1):
        raise InvalidInput('send {} or {"to": <version number>}', code="invalid_input")
    return json_response(await run_in_threadpool(ctx.deployments.rollback, request.path_params["name"],
                                                 actor_of(request), client_address(request.scope), to))
