"""GET /api/admin/scheduler — the scheduled jobs (what each does, its schedule, its last run) and the latest
runs, newest first (``?job=`` narrows them; ``limit`` up to 500), and which instance leads."""

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.http import json_response, query_int
from runtime.openapi import admin_operation
from scheduler.jobs import JOBS, trigger_for
from scheduler.lease import Lease
from scheduler.runner import describe
from storage.models import SchedulerRun

RUN = {"type": "object", "required": ["id", "job", "outcome"], "properties": {
    "id": {"type": "integer"}, "job": {"type": "string"}, "outcome": {"type": "string"},
    "figures": {"type": "object"}, "error": {"type": "string", "nullable": True}}}
OPENAPI = admin_operation("Scheduled jobs and their runs", "admin", parameters=[
    {"name": "job", "in": "query", "schema": {"type": "string", "enum": list(JOBS)}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}}],
    answer={"type": "object", "required": ["jobs", "runs"], "properties": {
        "leader": {"type": "string", "nullable": True},
        "jobs": {"type": "array", "items": {"type": "object"}},
        "runs": {"type": "array", "items": RUN}}}, statuses=(400,))


def _listing(ctx, job: str | None, limit: int) -> dict:
    runs = SchedulerRun.select().order_by(SchedulerRun.id.desc())
    if job:
        runs = runs.where(SchedulerRun.job == job)
    jobs = []
    for name, definition in JOBS.items():
        last = SchedulerRun.select().where((SchedulerRun.job == name) & SchedulerRun.finished_at.is_null(False)) \
            .order_by(SchedulerRun.id.desc()).first()
        jobs.append({"name": name, "description": definition.description, "ref": definition.ref,
                     "schedule": str(trigger_for(name, ctx.settings)), "last_run": describe(last) if last else None})
    return {"leader": Lease("", ctx.settings.scheduler_lease_s).holder_now(), "jobs": jobs,
            "runs": [describe(row) for row in runs.limit(limit)]}


@function(route="/api/admin/scheduler", methods=["GET"], auth="admin", openapi=OPENAPI)
async def admin_scheduler(request, ctx):
    job = request.query_params.get("job")
    if job is not None and job not in JOBS:
        raise InvalidInput(f"job is one of {', '.join(JOBS)}", code="unknown_job")
    limit = query_int(request.query_params, "limit", 50, 1, 500)
    return json_response(await run_in_threadpool(_listing, ctx, job, limit))
