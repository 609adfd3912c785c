"""POST /api/admin/password — change your own password (the current one is needed); your other sessions end."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import ApiError, InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import admins, audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of, principal_of

OPENAPI = admin_operation(
    "Change your own password", "admin",
    body={"type": "object", "required": ["current_password", "new_password"], "properties": {
        "current_password": {"type": "string"}, "new_password": {"type": "string", "minLength": 12,
                                                                  "maxLength": 128}}},
    answer={"type": "object"}, statuses=(409,))


def _change(ctx, request, current, new) -> int:
    principal = principal_of(request)
    client = client_address(request.scope)
    if principal.session is None:
        raise ApiError("log in with a password to change it (an API key has none)", code="not_a_session", status=409)
    name = principal.session.admin
    row = admins.get(name)
    if not ctx.security.passwords.verify(row.password_hash, current):
        audit.record(actor_of(request), client, "admin.password", audit.FAILURE, name, reason="wrong current password")
        raise InvalidInput("the current password is wrong", code="wrong_password")
    return admins.set_password(ctx.security, name, new, actor_of(request), client, keep_session=principal.session.id)


@function(route="/api/admin/password", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_password(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("current_password"), str):
        raise InvalidInput('send {"current_password": "...", "new_password": "..."}', code="invalid_input")
    ended = await run_in_threadpool(_change, ctx, request, body["current_password"], body.get("new_password"))
    return json_response({"changed": True, "other_sessions_ended": ended})
