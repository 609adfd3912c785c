"""The stuck-job reaper: a job ``running`` on a worker whose heartbeat stopped is queued again (the actor
takes over a job whose worker is dead), up to ``MAX_ATTEMPTS`` starts; then it fails with the reason, so a
text that kills its worker every time cannot loop for ever. Workers also recover such jobs when they start;
this job covers the case where no worker restarts."""

from __future__ import annotations

from loguru import logger

from runtime.workers import Liveness
from storage.models import FAILED, RUNNING, Job, utcnow

MAX_ATTEMPTS = 3


def _enqueue(settings):
    """A sender of synthesis messages for a process that runs no worker (``python -m scheduler``)."""
    from runtime.broker import build_broker, declare_synthesis

    return declare_synthesis(build_broker(settings), lambda job_id: None, settings)


def run(ctx) -> dict:
    s = ctx.settings
    services = ctx.services
    liveness = services.liveness if services is not None else Liveness(s.worker_dead_after_s)
    enqueue = None
    requeued = failed = 0
    for job in Job.select(Job.id, Job.worker_id, Job.attempts, Job.chunks_total).where(Job.status == RUNNING):
        if liveness.is_alive(job.worker_id):
            continue
        if job.attempts >= MAX_ATTEMPTS:
            reason = (f"its worker stopped while running it, {job.attempts} times (the most a job is started); "
                      "a worker that dies on this text every time cannot finish it")
            failed += Job.update(status=FAILED, error=reason, finished_at=utcnow()).where(
                (Job.id == job.id) & (Job.status == RUNNING) & (Job.worker_id == job.worker_id)).execute()
            logger.warning("job {} failed: {}", job.id, reason)
            continue
        if enqueue is None:
            enqueue = services.speech.enqueue if services is not None else _enqueue(s)
        enqueue(job.id, job.chunks_total)
        requeued += 1
    return {"requeued": requeued, "failed": failed}
