"""PATCH /api/admin/users/{name} — disable or enable an admin (disabling ends their sessions), or set a
new password for them (their sessions end)."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import ApiError, InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import admins
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of, principal_of

OPENAPI = admin_operation(
    "Disable or enable an admin, or reset their password", "admin",
    body={"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
        "disabled": {"type": "boolean"}, "password": {"type": "string", "minLength": 12, "maxLength": 128}}},
    answer={"$ref": "#/components/schemas/Admin"}, statuses=(404, 409))


def _update(ctx, request, name: str, body: dict):
    actor, client = actor_of(request), client_address(request.scope)
    me = principal_of(request).admin_name
    if "disabled" in body:
        if body["disabled"] and name == me:
            raise ApiError("you cannot disable yourself; ask another admin", code="cannot_disable_self", status=409)
        admins.set_disabled(ctx.security, name, body["disabled"], actor, client)
    if "password" in body:
        admins.set_password(ctx.security, name, body["password"], actor, client)
    return admins.describe(admins.get(name))


@function(route="/api/admin/users/{name}", methods=["PATCH"], auth="admin", openapi=OPENAPI)
async def admin_user_update(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict) or not body or set(body) - {"disabled", "password"} or \
            ("disabled" in body and not isinstance(body["disabled"], bool)):
        raise InvalidInput('send {"disabled": true|false} and/or {"password": "..."}', code="invalid_input")
    name = admins.check_name(request.path_params["name"])
    return json_response(await run_in_threadpool(_update, ctx, request, name, body))
