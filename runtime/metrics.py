"""Prometheus metrics (prometheus-client).

Counted where they happen: requests and latency per function and status (the registry's endpoints),
syntheses, latency and real-time factor per engine, fallbacks, cache hits and misses. Read from the shared
database at each scrape, so every process agrees: jobs by status, queue depth, cache bytes, entries and
pins, the database's size, free space on the data volume, scheduler runs and the last success per job,
circuit states. Scaled out, worker processes count their syntheses in prometheus-client's multiprocess
mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``runtime.cli`` under ``DATA_DIR/metrics`` before anything
imports prometheus-client) and ``/metrics`` adds them up.
"""

from __future__ import annotations

import os
import shutil
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter("ef_http_requests_total", "HTTP requests per function, version and status",
                   ["function", "version", "status"])
REQUEST_SECONDS = Histogram("ef_http_request_duration_seconds", "Time to answer (the whole body), per function and "
                            "version", ["function", "version"],
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
SYNTHESES = Counter("ef_syntheses_total", "Synthesis attempts per engine and outcome (ok, failed, skipped)",
                    ["engine", "outcome"])
SYNTHESIS_SECONDS = Histogram("ef_synthesis_duration_seconds", "Time one job's synthesis took, per engine",
                              ["engine"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
REAL_TIME_FACTOR = Histogram("ef_synthesis_real_time_factor", "Synthesis time / audio duration, per engine",
                             ["engine"], buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2))
ENGINE_LANES = Counter("ef_engine_lane_syntheses_total", "Syntheses started per engine and lane: idle (the worker "
                       "had nothing else to synthesise: several cores) or shared (one core each)", ["engine", "lane"])
FALLBACKS = Counter("ef_fallbacks_total", "Jobs spoken by a fallback engine, per engine that spoke", ["engine"])
FUNCTION_COLD_STARTS = Counter("ef_function_cold_starts_total", "First calls of a function after its version "
                               "loaded in a process", ["function", "version"])
FUNCTION_TIMEOUTS = Counter("ef_function_timeouts_total", "Requests answered 504 or cut off mid-stream by timeout_s",
                            ["function", "version"])
FUNCTION_REJECTIONS = Counter("ef_function_concurrency_rejections_total", "Requests refused with 429 because the "
                              "function had its concurrency limit in flight", ["function", "version"])
CANARY_ROLLBACKS = Counter("ef_function_canary_rollbacks_total", "Canaries rolled back automatically for their "
                           "error rate, per function module", ["module"])
WYOMING_REQUESTS = Counter("ef_wyoming_syntheses_total", "Wyoming synthesize answers (a streamed text counts each "
                           "sentence) by outcome", ["outcome"])
CACHE_REQUESTS = Counter("ef_cache_requests_total", "Speech requests answered from the cache (hit) or not (miss)",
                         ["result"])


def initialise(engines) -> None:
    """Create every engine's series at zero, so dashboards and alerts see them before the first event."""
    for engine in engines:
        for outcome in ("ok", "failed", "skipped"):
            SYNTHESES.labels(engine, outcome)
        FALLBACKS.labels(engine)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class StateCollector:
    """Values read from the database (and the disk) at each scrape."""

    def __init__(self, services) -> None:
        self.services = services

    def collect(self):
        from peewee import fn

        from storage.models import CacheEntry, CachePin, Job, SchedulerRun

        s = self.services
        jobs = GaugeMetricFamily("ef_jobs", "Jobs in the database by status", labels=["status"])
        counts = dict(Job.select(Job.status, fn.COUNT(Job.id)).group_by(Job.status).tuples())
        for status in ("queued", "running", "succeeded", "failed"):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        yield GaugeMetricFamily("ef_queue_depth", "Jobs waiting for a worker", value=counts.get("queued", 0))
        size, entries = CacheEntry.select(fn.COALESCE(fn.SUM(CacheEntry.size_bytes), 0), fn.COUNT(CacheEntry.key)) \
            .tuples().first()
        yield GaugeMetricFamily("ef_cache_bytes", "Bytes of audio in the cache", value=size)
        yield GaugeMetricFamily("ef_cache_max_bytes", "The cache's cap (CACHE_MAX_BYTES)",
                                value=s.settings.cache_max_bytes)
        yield GaugeMetricFamily("ef_cache_entries", "Files in the cache", value=entries)
        yield GaugeMetricFamily("ef_cache_pinned", "Pinned phrases", value=CachePin.select().count())
        evicted = GaugeMetricFamily("ef_cache_evicted", "Entries dropped by the eviction runs still on record",
                                    labels=["reason"])
        totals = {"evicted": 0, "expired": 0}
        for row in SchedulerRun.select(SchedulerRun.figures).where(
                (SchedulerRun.job == "evict") & (SchedulerRun.outcome == "success")):
            figures = _json(row.figures)
            for reason in totals:
                totals[reason] += int(figures.get(reason, 0))
        for reason, value in totals.items():
            evicted.add_metric([reason], value)
        yield evicted
        yield GaugeMetricFamily("ef_database_bytes", "Size of the database (SQLite file and WAL; 0 on Postgres)",
                                value=_sqlite_bytes(s.settings.database_url))
        usage = shutil.disk_usage(s.settings.data_dir)
        yield GaugeMetricFamily("ef_data_free_bytes", "Free space on the data volume", value=usage.free)
        yield GaugeMetricFamily("ef_data_total_bytes", "Size of the data volume", value=usage.total)
        # "task", not "job": Prometheus gives every scraped series its own job label
        runs = GaugeMetricFamily("ef_scheduler_runs", "Scheduler runs on record per task and outcome",
                                 labels=["task", "outcome"])
        for job, outcome, count in SchedulerRun.select(SchedulerRun.job, SchedulerRun.outcome,
                                                       fn.COUNT(SchedulerRun.id)).group_by(
                SchedulerRun.job, SchedulerRun.outcome).tuples():
            runs.add_metric([job, outcome], count)
        yield runs
        last = GaugeMetricFamily("ef_scheduler_last_success_timestamp_seconds",
                                 "When each scheduled task last succeeded (Unix time)", labels=["task"])
        for job, finished in SchedulerRun.select(SchedulerRun.job, fn.MAX(SchedulerRun.finished_at)).where(
                SchedulerRun.outcome == "success").group_by(SchedulerRun.job).tuples():
            last.add_metric([job], _timestamp(finished))
        yield last
        every = GaugeMetricFamily("ef_scheduler_interval_seconds",
                                  "How often each scheduled task runs (cron: the time between its next two runs)",
                                  labels=["task"])
        for job, seconds in job_intervals(s.settings).items():
            every.add_metric([job], seconds)
        yield every
        circuit = GaugeMetricFamily("ef_circuit_open", "1 when an engine's circuit is open (or half-open)",
                                    labels=["engine"])
        for engine in s.engines:
            circuit.add_metric([engine], 0 if s.breakers.status(engine)["state"] == "closed" else 1)
        yield circuit
        build = GaugeMetricFamily("ef_build_info", "Build information", labels=["version"])
        build.add_metric([_version()], 1)
        yield build


def job_intervals(settings) -> dict[str, float]:
    import datetime as dt

    from scheduler.jobs import JOBS, trigger_for

    out = {}
    now = dt.datetime.now(dt.UTC)
    for name in JOBS:
        trigger = trigger_for(name, settings)
        first = trigger.get_next_fire_time(None, now)
        second = trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1))
        out[name] = (second - first).total_seconds() if first and second else 0.0
    return out


def render(services) -> bytes:
    """The exposition text: this process's metrics (or every process's, in multiprocess mode) and the
    database's state."""
    from prometheus_client import REGISTRY

    counted = REGISTRY
    if multiprocess_dir():
        counted = CollectorRegistry()
        MultiProcessCollector(counted)
    state = CollectorRegistry()
    state.register(StateCollector(services))
    return generate_latest(counted) + generate_latest(state)  # distinct metric names: one valid exposition


def _json(text: str) -> dict:
    import json

    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


def _timestamp(value) -> float:
    import datetime as dt

    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC).timestamp() if value else 0.0


def _sqlite_bytes(url: str) -> int:
    from storage.backup import sqlite_path

    path = sqlite_path(url)
    if path is None:
        return 0
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _version() -> str:
    try:
        return version("ef-speech-functions")
    except PackageNotFoundError:
        return "0.1.0"
