"""POST /api/admin/totp/enrol — start TOTP enrolment: a new secret as an otpauth:// URI and its QR code
(SVG). It takes effect when a code from the app is verified (POST /api/admin/totp/verify)."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import audit, totp
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of, session_admin
from storage.models import Admin

OPENAPI = admin_operation("Start TOTP enrolment (URI and QR code)", "admin", answer={
    "type": "object", "required": ["otpauth_uri", "qr_svg"], "properties": {
        "otpauth_uri": {"type": "string"}, "qr_svg": {"type": "string"}}}, statuses=(409,))


def _enrol(request) -> str:
    name = session_admin(request)
    secret = totp.new_secret()
    Admin.update(totp_pending=secret).where(Admin.name == name).execute()
    audit.record(actor_of(request), client_address(request.scope), "admin.totp_enrol", audit.SUCCESS, name)
    return totp.uri(secret, name)


@function(route="/api/admin/totp/enrol", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_totp_enrol(request, ctx):
    uri = await run_in_threadpool(_enrol, request)
    return json_response({"otpauth_uri": uri, "qr_svg": totp.qr_svg(uri)})
