"""Health: ``/healthz`` (the process is alive), ``/health`` (api, db, queue, worker), ``/readyz`` (db
writable, cache writable, and an engine of the default chain has passed its canary synthesis in a live
worker: readiness proves synthesis) and ``/health/tts`` (per engine: canary results, circuit state, jobs
and fallbacks). Unhealthy answers are 503."""

from peewee import fn
from starlette.concurrency import run_in_threadpool

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import json_content
from runtime.speech.synthesis import queue_depth
from storage.models import SUCCEEDED, EngineProbe, Job, SchemaVersion, utcnow

CHECKS = {"type": "object", "additionalProperties": {
    "type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}}}}
HEALTH = {"type": "object", "required": ["status", "checks"],
          "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]}, "checks": CHECKS}}
READY = {"type": "object", "required": ["ready", "checks"],
         "properties": {"ready": {"type": "boolean"}, "checks": CHECKS}}


@function(route="/healthz", methods=["GET"], auth="open", rate_limit=False, openapi={
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


def _default_chain(ctx) -> list[str]:
    return list(dict.fromkeys(v.engine for v in ctx.catalog.chain(ctx.catalog.default)))


def _live_probes(ctx) -> list[EngineProbe]:
    """Canary results of worker processes that are alive now (a dead worker's results prove nothing)."""
    return [p for p in EngineProbe.select().order_by(EngineProbe.engine) if ctx.liveness.is_alive(p.worker_id)]


def _serving(ctx, probe: EngineProbe) -> bool:
    """An engine serves when its latest canary in a live worker passed and its circuit is not open (an open
    circuit means real syntheses are failing now; requests go to the next engine of the chain)."""
    return probe.ok and ctx.breakers.status(probe.engine)["state"] != "open"


def _canary(ctx) -> dict:
    chain = _default_chain(ctx)
    probes = _live_probes(ctx)
    passed = sorted({p.engine for p in probes if _serving(ctx, p) and p.engine in chain})
    if not passed:
        errors = {**ctx.services.disabled_engines, **ctx.services.load_errors}
        raise RuntimeError(f"no engine of the default chain ({' -> '.join(chain)}) has passed its canary "
                           "synthesis in a live worker yet" + (f" ({errors})" if errors else ""))
    now = utcnow()
    ages = {p.engine: round((now - p.probed_at).total_seconds(), 1) for p in probes if p.engine in passed}
    return {"engines": passed, "chain": chain, "canary_age_s": ages}


def _ready(ctx) -> dict:
    checks = {"db_writable": _check(lambda: _db_writable(ctx)),
              "cache_writable": _check(ctx.cache.check_writable),
              "engine": _check(lambda: _canary(ctx))}
    return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}


@function(route="/readyz", methods=["GET"], auth="open", rate_limit=False, openapi={
    "summary": "Readiness: database and cache writable, an engine of the default chain passed its canary",
    "tags": ["Health"],
    "responses": {"200": json_content(READY, "Ready"), "503": json_content(READY, "Not ready")}})
async def readyz(request, ctx):
    body = await run_in_threadpool(_ready, ctx)
    return json_response(body, 200 if body["ready"] else 503)


def _isolation(ctx, name: str) -> dict:
    """Where the engine synthesises: its worker processes (per worker), and the idle lane's threads, or
    in-process."""
    engine = ctx.engines[name]
    processes = getattr(engine, "processes", 0)
    if not processes:
        return {"mode": "thread", "processes": 0, "idle_lane_threads": 0}
    return {"mode": "process", "processes": processes, "idle_lane_threads": engine.idle_threads}


def _tts(ctx) -> dict:
    probes = _live_probes(ctx)
    served = {row.engine: (row.jobs, int(row.fallbacks or 0)) for row in (
        Job.select(Job.engine, fn.COUNT(Job.id).alias("jobs"), fn.SUM(Job.fallback.cast("integer")).alias("fallbacks"))
        .where((Job.status == SUCCEEDED) & (Job.from_cache == False) & Job.engine.is_null(False))  # noqa: E712
        .group_by(Job.engine))}
    engines = {}
    for name in ctx.engines:
        jobs, fallbacks = served.get(name, (0, 0))
        engines[name] = {
            "canary": [{"worker_id": p.worker_id, "ok": p.ok, "latency_ms": round(p.latency_s * 1000, 1),
                        "error": p.error, "probed_at": p.probed_at.isoformat() + "Z",
                        "age_s": round((utcnow() - p.probed_at).total_seconds(), 1)}
                       for p in probes if p.engine == name],
            "circuit": ctx.breakers.status(name),
            "isolation": _isolation(ctx, name),
            "jobs": jobs,  # synthesised by this engine
            "fallback_jobs": fallbacks,  # of which it spoke as the fallback
        }
    chain = _default_chain(ctx)
    ok = any(_serving(ctx, p) and p.engine in chain for p in probes)
    return {"ok": ok, "default_chain": chain, "engines": engines, "disabled": ctx.services.disabled_engines,
            "fallbacks_total": sum(e["fallback_jobs"] for e in engines.values())}


TTS = {"type": "object", "required": ["ok", "default_chain", "engines", "fallbacks_total"], "properties": {
    "ok": {"type": "boolean"}, "default_chain": {"type": "array", "items": {"type": "string"}},
    "fallbacks_total": {"type": "integer"},
    "disabled": {"type": "object", "additionalProperties": {"type": "string"},
                 "description": "engines not set up (missing or changed model files), and why"},
    "engines": {"type": "object", "additionalProperties": {"type": "object", "properties": {
        "canary": {"type": "array", "items": {"type": "object", "properties": {
            "worker_id": {"type": "string"}, "ok": {"type": "boolean"}, "latency_ms": {"type": "number"},
            "error": {"type": "string", "nullable": True}, "probed_at": {"type": "string"},
            "age_s": {"type": "number", "description": "seconds since this canary ran"}}}},
        "circuit": {"type": "object", "properties": {
            "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
            "consecutive_failures": {"type": "integer"}, "cooldown_s": {"type": "number"}}},
        "isolation": {"type": "object", "description": "process: the engine synthesises in this many worker "
                      "processes per worker (ENGINE_ISOLATION, ENGINE_PROCESSES), plus an idle lane of one "
                      "process with this many threads for a synthesis that starts while the worker has "
                      "nothing else to do (PIPER_IDLE_THREADS; 0: none); thread: in-process",
                      "properties": {"mode": {"type": "string", "enum": ["process", "thread"]},
                                     "processes": {"type": "integer"}, "idle_lane_threads": {"type": "integer"}}},
        "jobs": {"type": "integer"}, "fallback_jobs": {"type": "integer"}}}}}}


@function(route="/health/tts", methods=["GET"], openapi={
    "summary": "Engines: canary results per live worker, circuit breaker state, jobs and fallbacks",
    "tags": ["Health"],
    "responses": {"200": json_content(TTS, "An engine of the default chain passes its canary"),
                  "503": json_content(TTS, "No engine of the default chain passes its canary")}})
async def health_tts(request, ctx):
    body = await run_in_threadpool(_tts, ctx)
    return json_response(body, 200 if body["ok"] else 503)
