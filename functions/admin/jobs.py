"""GET /api/admin/jobs — synthesis jobs, newest first: filter by status and caller; paginate with limit and
offset."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, query_int
from runtime.openapi import admin_operation
from runtime.speech.service import job_view
from storage.models import Job

OPENAPI = admin_operation("Synthesis jobs", "admin", parameters=[
    {"name": "status", "in": "query", "schema": {"type": "string",
                                                  "enum": ["queued", "running", "succeeded", "failed"]}},
    {"name": "caller", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "ip:<address> or key:<id>"},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000000}}],
    answer={"type": "object", "required": ["jobs"], "properties": {
        "jobs": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/Job"}, {
            "type": "object", "properties": {
                "caller": {"type": "string", "nullable": True},
                "function": {"type": "string", "nullable": True,
                             "description": "the function and version that asked (openai_speech@3)"}}}]}}}},
    statuses=(400,))


@function(route="/api/admin/jobs", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_jobs(request, ctx):
    params = request.query_params
    query = Job.select().order_by(Job.created_at.desc())
    if params.get("status") is not None:
        if params["status"] not in ("queued", "running", "succeeded", "failed"):
            raise InvalidInput("status is queued, running, succeeded or failed", code="invalid_query")
        query = query.where(Job.status == params["status"])
    if params.get("caller") is not None:
        if len(params["caller"]) > 200:
            raise InvalidInput("caller is at most 200 characters", code="invalid_query")
        query = query.where(Job.caller == params["caller"])
    limit, offset = query_int(params, "limit", 50, 1, 500), query_int(params, "offset", 0, 0, 1_000_000)
    rows = await run_in_threadpool(lambda: list(query.limit(limit).offset(offset)))
    return json_response({"jobs": [{**job_view(row), "caller": row.caller, "function": row.function}
                                    for row in rows]})
