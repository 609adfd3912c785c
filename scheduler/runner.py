"""The scheduler: APScheduler 3's ``BackgroundScheduler`` running the jobs of ``scheduler.jobs`` — only in
the instance that holds the lease (``scheduler.lease``), so exactly one runs them however many are started.

Every run is a row in ``scheduler_runs`` (job, holder, start, end, outcome, figures, error). "Run now" (the
admin function, any process) inserts a ``requested`` row; the leader picks requests up at its next lease
tick (every ``SCHEDULER_LEASE_S / 3``) and runs them. Embedded mode runs this inside ``python -m runtime
serve``; scaled out it is ``python -m scheduler``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.util import ref_to_obj
from loguru import logger

from scheduler.jobs import JOBS, trigger_for
from scheduler.lease import Lease
from storage.models import SchedulerRun, utcnow

FAILURE, SUCCESS, RUNNING, REQUESTED = "failure", "success", "running", "requested"


@dataclass
class JobContext:
    """What a job gets: the settings (and the process's services, when it has them)."""

    settings: object
    services: object | None = None


class Scheduler:
    def __init__(self, settings, services: object | None = None, holder: str | None = None) -> None:
        self.settings = settings
        self.context = JobContext(settings, services)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = Lease(self.holder, settings.scheduler_lease_s)
        self.leading = False
        self._run_lock = threading.Lock()  # one run of a given job at a time in this instance
        self._running: set[str] = set()
        self._aps = BackgroundScheduler(timezone="UTC", executors={"default": ThreadPoolExecutor(4)},
                                        job_defaults={"coalesce": True, "max_instances": 1,
                                                      "misfire_grace_time": 300})

    def start(self) -> None:
        self._aps.add_job(self._tick, "interval", seconds=max(0.2, self.settings.scheduler_lease_s / 3),
                          id="lease", next_run_time=_now())
        for name in JOBS:
            self._aps.add_job(self.run, trigger_for(name, self.settings), args=[name], id=name)
        self._aps.start()
        logger.info("scheduler {} started; jobs: {}", self.holder, ", ".join(JOBS))

    def stop(self) -> None:
        self._aps.shutdown(wait=True)
        if self.leading:
            self.lease.release()
            self.leading = False
            logger.info("scheduler {} released the lease", self.holder)

    def _tick(self) -> None:
        try:
            leading = self.lease.acquire()
        except Exception as exc:  # the database is away: not leading until it answers again
            logger.warning("scheduler lease: {}", exc)
            leading = False
        if leading != self.leading:
            logger.info("scheduler {} {} the lease", self.holder, "holds" if leading else "lost")
        self.leading = leading
        if leading:
            for request in SchedulerRun.select().where(SchedulerRun.outcome == REQUESTED).order_by(SchedulerRun.id):
                if request.job in JOBS:
                    self._aps.add_job(self.run, args=[request.job], kwargs={"request_id": request.id})

    def run(self, name: str, request_id: int | None = None) -> SchedulerRun | None:
        """Run job ``name`` now, if this instance leads and the job is not already running here."""
        if not self.leading:
            return None
        with self._run_lock:
            if name in self._running:
                return None
            self._running.add(name)
        try:
            started = utcnow()
            if request_id is not None:
                taken = SchedulerRun.update(outcome=RUNNING, holder=self.holder, started_at=started).where(
                    (SchedulerRun.id == request_id) & (SchedulerRun.outcome == REQUESTED)).execute()
                if not taken:
                    return None
                row = SchedulerRun.get_by_id(request_id)
            else:
                row = SchedulerRun.create(job=name, holder=self.holder, started_at=started, outcome=RUNNING)
            began = time.monotonic()
            try:
                figures = ref_to_obj(JOBS[name].ref)(self.context) or {}
                outcome, error = SUCCESS, None
            except Exception as exc:
                logger.exception("scheduled job {} failed", name)
                figures, outcome, error = {}, FAILURE, f"{type(exc).__name__}: {exc}"[:2000]
            figures = {**figures, "seconds": round(time.monotonic() - began, 3)}
            SchedulerRun.update(outcome=outcome, finished_at=utcnow(), figures=json.dumps(figures, default=str),
                                error=error).where(SchedulerRun.id == row.id).execute()
            logger.info("scheduled job {}: {} {}", name, outcome, figures)
            return SchedulerRun.get_by_id(row.id)
        finally:
            with self._run_lock:
                self._running.discard(name)


def request_run(name: str, requested_by: str) -> SchedulerRun:
    """Ask the leader to run ``name`` at its next tick (any process may ask)."""
    return SchedulerRun.create(job=name, requested_by=requested_by, outcome=REQUESTED)


def describe(row: SchedulerRun) -> dict:
    def iso(value):
        return value.isoformat() + "Z" if value else None

    return {"id": row.id, "job": row.job, "outcome": row.outcome, "holder": row.holder,
            "requested_by": row.requested_by, "created_at": iso(row.created_at), "started_at": iso(row.started_at),
            "finished_at": iso(row.finished_at), "figures": json.loads(row.figures or "{}"), "error": row.error}


def _now():
    import datetime as dt

    return dt.datetime.now(dt.UTC)
