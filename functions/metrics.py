"""GET /metrics — Prometheus metrics: requests, syntheses, fallbacks, queue, jobs, cache, database, disk,
scheduler, circuits (``runtime.metrics``). From ADMIN_ALLOWED_CIDRS, or with an admin API key."""

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from runtime import metrics
from runtime.functions import function
from runtime.openapi import text_content

OPENAPI = {"summary": "Prometheus metrics (the admin network, or an admin key)", "tags": ["Health"],
           "responses": {"200": text_content("Prometheus text exposition format")}}


@function(route="/metrics", methods=["GET"], auth="monitor", rate_limit=False, openapi=OPENAPI)
async def prometheus_metrics(request, ctx):
    body = await run_in_threadpool(metrics.render, ctx.services)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
