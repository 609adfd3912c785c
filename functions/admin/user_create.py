"""POST /api/admin/users — create an admin (the password follows the password rules)."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import admins
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of

OPENAPI = admin_operation(
    "Create an admin", "admin",
    body={"type": "object", "required": ["username", "password"], "properties": {
        "username": {"type": "string", "pattern": admins.NAME.pattern},
        "password": {"type": "string", "minLength": 12, "maxLength": 128}}},
    answer={"$ref": "#/components/schemas/Admin"}, ok="201", statuses=(409,))


@function(route="/api/admin/users", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_user_create(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput('send {"username": "...", "password": "..."}', code="invalid_input")
    row = await run_in_threadpool(admins.create, ctx.security, body.get("username"), body.get("password"),
                                  actor_of(request), client_address(request.scope))
    return json_response(admins.describe(row), 201)
