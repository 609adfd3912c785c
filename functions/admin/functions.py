"""GET /api/admin/functions — every function module: the version serving, the canary and its share of
traffic, who changed it last and why."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation

MODULES = {"type": "array", "items": {"$ref": "#/components/schemas/FunctionModule"}}
OPENAPI = admin_operation("List the function modules, their versions and traffic split", "admin",
                          answer={"type": "object", "required": ["functions"], "properties": {"functions": MODULES}})


@function(route="/api/admin/functions", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_functions(request, ctx):
    return json_response({"functions": await run_in_threadpool(ctx.deployments.listing)})
