"""The scheduled jobs, by name: each is a ``"module:function"`` reference (APScheduler's own notation) taking
a ``JobContext`` and returning its figures (a dict), and a trigger built from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger


@dataclass(frozen=True)
class JobDef:
    name: str
    ref: str  # "module:function"
    description: str


JOBS: dict[str, JobDef] = {job.name: job for job in (
    JobDef("evict", "scheduler.jobs.evict:run",
           "keep the audio cache under CACHE_MAX_BYTES and drop entries unused for CACHE_TTL_DAYS (LRU; pinned "
           "phrases and running jobs' audio are kept); remove orphan files and rows"),
    JobDef("reap", "scheduler.jobs.reap:run",
           "queue again a job running on a worker whose heartbeat stopped (3 starts at most, then it fails)"),
    JobDef("prune", "scheduler.jobs.prune:run",
           "delete finished jobs older than JOB_RETENTION_DAYS and the rows of dead workers"),
    JobDef("backup", "scheduler.jobs.backup:run",
           "copy the database into DATA_DIR/backups (SQLite's online backup API), verify it, keep BACKUP_KEEP"),
)}


def trigger_for(name: str, settings):
    if name == "evict":
        return IntervalTrigger(seconds=settings.eviction_interval_s)
    if name == "prune":
        return IntervalTrigger(seconds=settings.prune_interval_s)
    if name == "reap":
        return IntervalTrigger(seconds=max(5.0, settings.worker_dead_after_s))
    if name == "backup":
        return CronTrigger.from_crontab(settings.backup_cron, timezone="UTC")
    raise KeyError(name)
