"""POST /api/admin/keys — create an API key; the answer shows the key this once."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of
from runtime.security.keys import LEVELS, describe

OPENAPI = admin_operation(
    "Create an API key (shown once)", "admin",
    body={"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "level": {"type": "string", "enum": list(LEVELS), "default": "key"},
        "expires_days": {"type": "number", "minimum": 0.001, "maximum": 36500, "nullable": True}}},
    answer={"allOf": [{"$ref": "#/components/schemas/ApiKey"}, {"type": "object", "required": ["key"], "properties": {
        "key": {"type": "string", "description": "the key itself: shown this once"}}}]}, ok="201")


def _create(ctx, request, name: str, level: str, days):
    row, token = ctx.security.keys.create(name, level, actor_of(request), days)
    audit.record(actor_of(request), client_address(request.scope), "key.create", audit.SUCCESS, row.id,
                 name=name, level=level, expires_days=days)
    return {**describe(row), "key": token}


@function(route="/api/admin/keys", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_key_create(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput('send {"name": "...", "level": "key"|"admin", "expires_days": 90}', code="invalid_input")
    name, level, days = body.get("name"), body.get("level", "key"), body.get("expires_days")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100 or not name.isprintable():
        raise InvalidInput("a key needs a name of 1-100 printable characters", code="invalid_name")
    if level not in LEVELS:
        raise InvalidInput(f"level is one of {', '.join(LEVELS)}", code="invalid_level")
    number = isinstance(days, (int, float)) and not isinstance(days, bool)
    if days is not None and (not number or not 0.001 <= days <= 36500):
        raise InvalidInput("expires_days is a number of days, 0.001-36500, or null", code="invalid_expiry")
    return json_response(await run_in_threadpool(_create, ctx, request, name.strip(), level, days), 201)
