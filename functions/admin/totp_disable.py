"""POST /api/admin/totp/disable — turn your TOTP off (your password is needed)."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of, session_admin
from storage.models import Admin

OPENAPI = admin_operation("Turn your TOTP off", "admin", body={
    "type": "object", "required": ["password"], "properties": {"password": {"type": "string"}}},
    answer={"type": "object"}, statuses=(409,))


def _disable(ctx, request, password: str) -> None:
    name = session_admin(request)
    client = client_address(request.scope)
    if not ctx.security.passwords.verify(Admin.get_by_id(name).password_hash, password):
        audit.record(actor_of(request), client, "admin.totp_off", audit.FAILURE, name, reason="wrong password")
        raise InvalidInput("the password is wrong", code="wrong_password")
    Admin.update(totp_secret=None, totp_pending=None, totp_last_step=None, recovery_codes=None).where(
        Admin.name == name).execute()
    audit.record(actor_of(request), client, "admin.totp_off", audit.SUCCESS, name)


@function(route="/api/admin/totp/disable", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_totp_disable(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("password"), str):
        raise InvalidInput('send {"password": "..."}', code="invalid_input")
    await run_in_threadpool(_disable, ctx, request, body["password"])
    return json_response({"totp": False})
