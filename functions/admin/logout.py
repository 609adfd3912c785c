"""POST /api/admin/logout — end this session (its cookie is cleared)."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of, principal_of
from runtime.security.sessions import COOKIE, SECURE_COOKIE

OPENAPI = admin_operation("Log out: the session ends", "admin", answer={"type": "object"})


@function(route="/api/admin/logout", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_logout(request, ctx):
    principal = principal_of(request)
    if principal.session is None:
        raise InvalidInput("an API key has no session to end; revoke the key instead", code="not_a_session")
    await run_in_threadpool(ctx.security.sessions.end, principal.session.id)
    await run_in_threadpool(audit.record, actor_of(request), client_address(request.scope), "admin.logout",
                            audit.SUCCESS, principal.session.admin)
    response = json_response({"logged_out": True})
    for name in (COOKIE, SECURE_COOKIE):
        response.delete_cookie(name, path="/", secure=name == SECURE_COOKIE, httponly=True, samesite="strict")
    return response
