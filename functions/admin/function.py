"""GET /api/admin/functions/{name} — one function module (by its name or a function's) with its whole
version history (sources: GET …/versions/{version})."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation

OPENAPI = admin_operation(
    "A function module and its version history", "admin", statuses=(404,),
    parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                 "description": "a function module (speech, admin.users) or a function it declares"}],
    answer={"allOf": [{"$ref": "#/components/schemas/FunctionModule"}, {"type": "object", "properties": {
        "versions": {"type": "array", "items": {"$ref": "#/components/schemas/FunctionVersion"}}}}]})


@function(route="/api/admin/functions/{name}", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_function(request, ctx):
    return json_response(await run_in_threadpool(ctx.deployments.history, request.path_params["name"]))
