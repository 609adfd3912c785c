"""GET /api/admin/functions/{name}/versions/{version} — one stored version with its source (what a diff
between versions compares)."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation

OPENAPI = admin_operation(
    "One version of a function module, with its source", "admin", statuses=(404,),
    parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "version", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}],
    answer={"allOf": [{"$ref": "#/components/schemas/FunctionVersion"},
                      {"type": "object", "required": ["source"], "properties": {"source": {"type": "string"}}}]})


@function(route="/api/admin/functions/{name}/versions/{version:int}", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_function_source(request, ctx):
    params = request.path_params
    return json_response(await run_in_threadpool(ctx.deployments.source, params["name"], params["version"]))
