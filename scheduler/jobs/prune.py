"""The pruning job: finished jobs older than ``JOB_RETENTION_DAYS``, scheduler runs as old, the heartbeat and
canary rows of workers dead for an hour, ended admin sessions and stale login-failure counters."""

from __future__ import annotations

import datetime as dt

from storage.models import (
    ACTIVE_STATES,
    AdminSession,
    EngineProbe,
    Job,
    LoginFailure,
    SchedulerRun,
    WorkerHeartbeat,
    utcnow,
)

DEAD_WORKER_KEPT = dt.timedelta(hours=1)  # a dead worker's rows stay this long (for the health pages)


def run(ctx) -> dict:
    now = utcnow()
    old = now - dt.timedelta(days=ctx.settings.job_retention_days)
    jobs = Job.delete().where(Job.status.not_in(ACTIVE_STATES) & (Job.finished_at < old)).execute()
    runs = SchedulerRun.delete().where(SchedulerRun.finished_at < old).execute()
    dead = [w.id for w in WorkerHeartbeat.select(WorkerHeartbeat.id).where(
        WorkerHeartbeat.heartbeat_at < now - max(DEAD_WORKER_KEPT,
                                                 dt.timedelta(seconds=ctx.settings.worker_dead_after_s)))]
    probes = EngineProbe.delete().where(EngineProbe.worker_id.in_(dead)).execute() if dead else 0
    workers = WorkerHeartbeat.delete().where(WorkerHeartbeat.id.in_(dead)).execute() if dead else 0
    sessions = AdminSession.delete().where(AdminSession.expires_at < now).execute()
    failures = LoginFailure.delete().where(LoginFailure.last_at < now - dt.timedelta(days=1)).execute()
    return {"jobs": jobs, "scheduler_runs": runs, "workers": workers, "probes": probes, "sessions": sessions,
            "login_failures": failures}
