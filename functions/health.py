"""Health: ``/healthz`` (the process is alive), ``/health`` (api, db, queue, worker) and ``/readyz``
(db writable, cache writable, an engine loaded and ready to synthesise). Unhealthy answers are 503."""

from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import json_content
from runtime.speech.synthesis import queue_depth
from storage.models import SchemaVersion

CHECKS = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}}}}
HEALTH = {"type": "object", "required": ["status", "checks"],
          "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]}, "checks": CHECKS}}
READY = {"type": "object", "required": ["ready", "checks"],
         "properties": {"ready": {"type": "boolean"}, "checks": CHECKS}}


@function(route="/healthz", methods=["GET"], openapi={
    "summary": "Liveness: the process answers", "tags": ["Health"],
    "responses": {"200": json_content({"type": "object", "properties": {"status": {"type": "string"}}}, "Alive")}})
async def healthz(request, ctx):
    return json_response({"status": "ok"})


def _check(fn) -> dict:
    try:
        detail = fn()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, **(detail or {})}


def _workers(ctx) -> dict:
    if ctx.settings.embedded:
        alive = ctx.services.worker is not None and ctx.services.heartbeat is not None
        if not alive:
            raise RuntimeError("the in-process worker is not running")
        return {"mode": "embedded", "workers": 1, "threads": ctx.settings.worker_threads}
    live = ctx.liveness.live_workers()
    if not live:
        raise RuntimeError("no worker process has sent a heartbeat recently; start `python -m runtime worker`")
    return {"mode": "redis", "workers": len(live)}


def _queue(ctx) -> dict:
    if ctx.settings.redis_url:
        ctx.broker.client.ping()
    return {"depth": queue_depth(), "broker": "redis" if ctx.settings.redis_url else "in-process"}


def _health(ctx) -> dict:
    checks = {"api": {"ok": True},
              "db": _check(lambda: {"schema_version": ctx.db.execute_sql("SELECT MAX(version) FROM schema_version")
                                    .fetchone()[0]}),
              "queue": _check(lambda: _queue(ctx)),
              "worker": _check(lambda: _workers(ctx))}
    return {"status": "ok" if all(c["ok"] for c in checks.values()) else "degraded", "checks": checks}


@function(route="/health", methods=["GET"], openapi={
    "summary": "Health of the API, database, queue and workers", "tags": ["Health"],
    "responses": {"200": json_content(HEALTH, "Healthy"), "503": json_content(HEALTH, "Degraded: a check failed")}})
async def health(request, ctx):
    body = await run_in_threadpool(_health, ctx)
    return json_response(body, 200 if body["status"] == "ok" else 503)


def _db_writable(ctx) -> None:
    with ctx.db.atomic() as txn:
        SchemaVersion.update(name=SchemaVersion.name).where(SchemaVersion.version == 1).execute()
        txn.rollback()


def _engines_ready(ctx) -> dict:
    if ctx.settings.embedded:
        ready = ctx.services.ready_engines()
    else:
        ready = sorted({e for w in ctx.liveness.live_workers() for e in w.engines.split(",") if e})
    if not ready:
        errors = ctx.services.load_errors
        raise RuntimeError("no engine is loaded yet" + (f" ({errors})" if errors else ""))
    return {"engines": ready}


def _ready(ctx) -> dict:
    checks = {"db_writable": _check(lambda: _db_writable(ctx)),
              "cache_writable": _check(ctx.cache.check_writable),
              "engine": _check(lambda: _engines_ready(ctx))}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


@function(route="/readyz", methods=["GET"], openapi={
    "summary": "Readiness: database and cache writable, an engine loaded", "tags": ["Health"],
    "responses": {"200": json_content(READY, "Ready"), "503": json_content(READY, "Not ready")}})
async def readyz(request, ctx):
    body = await run_in_threadpool(_ready, ctx)
    return json_response(body, 200 if body["ready"] else 503)
