"""DELETE /api/admin/keys/{id} — revoke an API key: refused everywhere within a second."""

import re

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput, NotFound
from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of
from runtime.security.keys import describe

_ID = re.compile(r"^[0-9a-f]{12}$")
OPENAPI = admin_operation("Revoke an API key", "admin", answer={"$ref": "#/components/schemas/ApiKey"},
                          statuses=(400, 404), parameters=[{"name": "id", "in": "path", "required": True, "schema": {
                              "type": "string", "pattern": "^[0-9a-f]{12}$"}}])


def _revoke(ctx, request, key_id: str) -> dict:
    row = ctx.security.keys.revoke(key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}", code="unknown_key")
    audit.record(actor_of(request), client_address(request.scope), "key.revoke", audit.SUCCESS, key_id, name=row.name)
    return describe(row)


@function(route="/api/admin/keys/{id}", methods=["DELETE"], auth="admin", openapi=OPENAPI)
async def admin_key_revoke(request, ctx):
    key_id = request.path_params["id"]
    if not _ID.match(key_id):
        raise InvalidInput("a key id is 12 lowercase hex characters", code="invalid_key_id")
    return json_response(await run_in_threadpool(_revoke, ctx, request, key_id))
