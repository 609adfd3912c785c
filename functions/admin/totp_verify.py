"""POST /api/admin/totp/verify — finish enrolment with a code from the app: TOTP is on from now, and the
answer holds 10 one-time recovery codes, shown this once."""

import json

from starlette.concurrency import run_in_threadpool

from runtime.errors import ApiError, InvalidInput
from runtime.functions import function
from runtime.http import json_response, read_json
from runtime.openapi import admin_operation
from runtime.security import audit, totp
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of, session_admin
from storage.models import Admin

OPENAPI = admin_operation(
    "Verify a TOTP code and turn TOTP on (answers the recovery codes once)", "admin",
    body={"type": "object", "required": ["code"], "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}}},
    answer={"type": "object", "required": ["recovery_codes"], "properties": {
        "recovery_codes": {"type": "array", "items": {"type": "string"}}}}, statuses=(409,))


def _verify(request, code: str) -> list[str]:
    name = session_admin(request)
    row = Admin.get_by_id(name)
    client = client_address(request.scope)
    if not row.totp_pending:
        raise ApiError("start with POST /api/admin/totp/enrol", code="totp_not_enrolling", status=409)
    step = totp.verify(row.totp_pending, code, None)
    if step is None:
        audit.record(actor_of(request), client, "admin.totp_verify", audit.FAILURE, name)
        raise InvalidInput("the code does not match; check the app's clock and try the next code",
                           code="totp_invalid")
    codes, digests = totp.recovery_codes()
    Admin.update(totp_secret=row.totp_pending, totp_pending=None, totp_last_step=step,
                 recovery_codes=json.dumps(digests)).where(Admin.name == name).execute()
    audit.record(actor_of(request), client, "admin.totp_on", audit.SUCCESS, name)
    return codes


@function(route="/api/admin/totp/verify", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_totp_verify(request, ctx):
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise InvalidInput('send {"code": "123456"}', code="invalid_input")
    return json_response({"recovery_codes": await run_in_threadpool(_verify, request, body["code"])})
