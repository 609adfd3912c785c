"""GET /api/admin/audit — the audit log, newest first: filter by action, actor, outcome and time range;
paginate with limit and before (an id from the previous page)."""

import datetime as dt

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, query_int
from runtime.openapi import admin_operation
from runtime.security.audit import describe
from storage.models import AuditEvent

_TEXT = {"type": "string", "maxLength": 200}
OUTCOMES = ("success", "failure", "denied", "throttled")
OPENAPI = admin_operation("The audit log", "admin", parameters=[
    {"name": "action", "in": "query", "schema": _TEXT, "description": "e.g. admin.login, key.create"},
    {"name": "actor", "in": "query", "schema": _TEXT},
    {"name": "outcome", "in": "query", "schema": {"type": "string", "enum": list(OUTCOMES)}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 2**62}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}}],
    answer={"type": "object", "required": ["events"], "properties": {
        "events": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
        "next_before": {"type": "integer", "nullable": True}}}, statuses=(400,))


def _time(params, name: str) -> dt.datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} is an ISO 8601 time such as 2026-12-01T00:00:00Z", code="invalid_time") from None
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


@function(route="/api/admin/audit", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_audit(request, ctx):
    params = request.query_params
    query = AuditEvent.select().order_by(AuditEvent.id.desc())
    for name in ("action", "actor", "outcome"):
        value = params.get(name)
        if value is None:
            continue
        if len(value) > 200 or (name == "outcome" and value not in OUTCOMES):
            raise InvalidInput(f"{name} is at most 200 characters" if name != "outcome" else
                               f"outcome is one of {', '.join(OUTCOMES)}", code="invalid_query")
        query = query.where(getattr(AuditEvent, name) == value)
    since, until = _time(params, "since"), _time(params, "until")
    if since:
        query = query.where(AuditEvent.at >= since)
    if until:
        query = query.where(AuditEvent.at <= until)
    before = query_int(params, "before", None, 1, 2**62)
    if before:
        query = query.where(AuditEvent.id < before)
    limit = query_int(params, "limit", 100, 1, 500)
    rows = await run_in_threadpool(lambda: list(query.limit(limit)))
    return json_response({"events": [describe(row) for row in rows],
                          "next_before": rows[-1].id if len(rows) == limit else None})
