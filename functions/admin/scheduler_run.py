"""POST /api/admin/scheduler/{job}/run — run a scheduled job now: the leading scheduler instance (in this
process or another) takes the request within a few seconds; the answer is the requested run (poll
GET /api/admin/scheduler for its outcome)."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import NotFound
from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import admin_operation
from runtime.security import audit
from runtime.security.addresses import client_address
from runtime.security.auth import actor_of
from scheduler.jobs import JOBS
from scheduler.runner import describe, request_run

OPENAPI = admin_operation("Run a scheduled job now", "admin", ok="202", statuses=(404,), parameters=[
    {"name": "job", "in": "path", "required": True, "schema": {"type": "string", "enum": list(JOBS)}}],
    answer={"type": "object", "required": ["id", "job", "outcome"]})


def _request(request, job: str) -> dict:
    actor = actor_of(request)
    row = request_run(job, actor)
    audit.record(actor, client_address(request.scope), "scheduler.run_now", audit.SUCCESS, job, run_id=row.id)
    return describe(row)


@function(route="/api/admin/scheduler/{job}/run", methods=["POST"], auth="admin", openapi=OPENAPI)
async def admin_scheduler_run(request, ctx):
    job = request.path_params["job"]
    if job not in JOBS:
        raise NotFound(f"no scheduled job {job!r}; the jobs are {', '.join(JOBS)}", code="unknown_job")
    return json_response(await run_in_threadpool(_request, request, job), 202)
