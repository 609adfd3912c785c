"""POST /api/admin/functions/{name}/versions — deploy a new version of a function module: its source is
loaded under a unique module name, checked (handlers, options, routes) and self-tested before it serves, at
once or as a canary for a share of callers. A refused version changes nothing (422 with the reason)."""

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of

MAX_SOURCE = 512_000
OPENAPI = admin_operation(
    "Deploy a new version of a function module", "admin", ok="201", statuses=(404, 413, 422),
    parameters=[{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
    body={"type": "object", "properties": {
        "source": {"type": "string", "description": "the module's new source; omitted: the serving version's "
                                                    "(to change options only)"},
        "note": {"type": "string", "maxLength": 1000},
        "canary": {"type": "integer", "minimum": 0, "maximum": 100, "nullable": True,
                   "description": "send this share of callers to the new version (promote or roll back later)"},
        "options": {"type": "object", "description": "@function options to override, e.g. {\"timeout_s\": 10, "
                                                     "\"config\": {\"greeting\": \"hi\"}}"}}},
    answer={"$ref": "#/components/schemas/FunctionModule"})


@function(route="/api/admin/functions/{name}/versions", methods=["POST"], auth="admin", max_body=MAX_SOURCE + 16_000,
          openapi=OPENAPI)
async def admin_function_deploy(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput('send {"source": "...", "note": "...", "canary": 10}', code="invalid_input")
    source, note, canary, options = body.get("source"), body.get("note", ""), body.get("canary"), body.get("options")
    if source is not None and (not isinstance(source, str) or not source.strip()):
        raise InvalidInput("source must be the module's Python source", code="invalid_source")
    if source is None and not options:
        raise InvalidInput("send a source, or options to change on the serving version", code="invalid_source")
    if not isinstance(note, str) or len(note) > 1000:
        raise InvalidInput("note must be text of at most 1000 characters", code="invalid_note")
    if options is not None and not isinstance(options, dict):
        raise InvalidInput("options must be an object of @function options", code="bad_options")
    done = await ctx.deployments.deploy(request.path_params["name"], source, actor_of(request),
                                        client_address(request.scope), note, canary, options)
    return json_response(done, 201 if done.get("created") else 200)
