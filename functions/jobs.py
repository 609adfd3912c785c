"""GET /api/jobs/{id} — a job's status (queued|running|succeeded|failed), timings, engine, error."""

import re

from starlette.concurrency import run_in_threadpool

from runtime.errors import InvalidInput, NotFound
from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import errors, json_content
from runtime.speech.service import job_view
from storage.models import Job

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


OPENAPI = {
    "summary": "A job's status, progress, timings and audio URL",
    "tags": ["Jobs"],
    "parameters": [{"name": "id", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}],
    "responses": {"200": json_content({"$ref": "#/components/schemas/Job"}, "The job"), **errors(400, 404)},
}


@function(route="/api/jobs/{id}", methods=["GET"], openapi=OPENAPI)
async def job_status(request, ctx):
    job_id = request.path_params["id"]
    if not _JOB_ID.match(job_id):
        raise InvalidInput("a job id is 32 lowercase hex characters", code="invalid_job_id")
    job = await run_in_threadpool(Job.get_or_none, Job.id == job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", code="job_not_found")
    return json_response(job_view(job))
