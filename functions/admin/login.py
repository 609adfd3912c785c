"""POST /api/admin/login — an admin session: the cookie, and the CSRF token to send back as X-CSRF-Token."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import admins
from runtime.security.addresses import client_address, is_https
from runtime.security.sessions import COOKIE, SECURE_COOKIE

OPENAPI = admin_operation(
    "Log in: answers the session cookie and {csrf_token}", "lan",
    body={"type": "object", "required": ["username", "password"], "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
        "totp": {"type": "string", "description": "the code from the authenticator app, or a recovery code"}}},
    answer={"type": "object", "required": ["csrf_token", "admin"], "properties": {
        "csrf_token": {"type": "string"}, "admin": {"type": "string"}, "expires_in_s": {"type": "number"}}},
    statuses=(401, 429))


# Throttling (growing delays per account and address, runtime.security.throttle) limits guessing, and each
# attempt is audited; concurrency=4 bounds Argon2's memory (64 MiB a check) under a flood of logins.
@function(route="/api/admin/login", methods=["POST"], auth="lan", concurrency=4,
          openapi=OPENAPI)
async def admin_login(request, ctx):
    body = await read_json(request)
    body = body if isinstance(body, dict) else {}
    client = client_address(request.scope)
    done = await run_in_threadpool(admins.login, ctx.security, body.get("username"), body.get("password"),
                                   body.get("totp"), client)
    settings = ctx.settings
    response = json_response({"admin": done.admin, "csrf_token": done.csrf, "expires_in_s": settings.session_max_s})
    secure = is_https(request.scope)
    # No Max-Age: a browser session cookie; the server ends the session at its idle or absolute limit.
    response.set_cookie(SECURE_COOKIE if secure else COOKIE, done.token, path="/", secure=secure, httponly=True,
                        samesite="strict")
    return response
