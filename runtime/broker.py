"""The Dramatiq broker and actors. Embedded: StubBroker + an in-process ``dramatiq.Worker``.
With ``REDIS_URL``: RedisBroker; workers run as separate processes (``python -m runtime worker``).

Actors are declared per broker (no global broker), and messages carry only job ids.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.brokers.stub import StubBroker

from runtime.settings import Settings

SYNTHESIZE_ACTOR = "synthesize"
SPEECH_QUEUE = "speech"


def build_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=settings.redis_url, namespace="ef-speech")
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


def declare_synthesize(broker: dramatiq.Broker, run_job: Callable[[str], None], settings: Settings) -> dramatiq.Actor:
    """The synthesis actor. Its own failures (database briefly locked…) retry; engine failures are
    recorded on the job by the body and never raise."""

    def synthesize(job_id: str) -> None:
        run_job(job_id)

    return dramatiq.actor(synthesize, broker=broker, actor_name=SYNTHESIZE_ACTOR, queue_name=SPEECH_QUEUE,
                          max_retries=3, min_backoff=200, max_backoff=5000,
                          time_limit=int(settings.job_timeout_s * 1000))


def enqueue_synthesis(actor: dramatiq.Actor, settings: Settings) -> Callable[[str, int], None]:
    """``enqueue(job_id, chunks)``: the time limit grows with the job, ``JOB_TIMEOUT_S`` per chunk."""

    def enqueue(job_id: str, chunks: int = 1) -> None:
        actor.send_with_options(args=(job_id,), time_limit=int(settings.job_timeout_s * 1000 * max(1, chunks)))

    return enqueue


def start_worker(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.start()
    return worker
