"""The Dramatiq broker and actors. Embedded: StubBroker + an in-process ``dramatiq.Worker``.
With ``REDIS_URL``: RedisBroker; workers run as separate processes (``python -m runtime worker``).

Actors are declared per broker (no global broker), and messages carry only job ids.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from runtime.settings import Settings

SYNTHESIZE_ACTOR = "synthesize"
SYNTHESIZE_LONG_ACTOR = "synthesize_long"
SPEECH_QUEUE = "speech"
SPEECH_LONG_QUEUE = "speech-long"
SHORT_PRIORITY, LONG_PRIORITY = 0, 10  # lower runs first


def build_broker(settings: Settings) -> dramatiq.Broker:
    if settings.redis_url:
        return RedisBroker(url=settings.redis_url, namespace="ef-speech")
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


def declare_synthesis(broker: dramatiq.Broker, run_job: Callable[[str], None],
                      settings: Settings) -> Callable[[str, int], None]:
    """The synthesis actors and ``enqueue(job_id, chunks)``. Short jobs (one sentence) go to
    ``synthesize``, long ones to ``synthesize_long``: a worker orders its work by actor priority, so a short
    request overtakes long jobs already waiting. The time limit grows with the job, ``JOB_TIMEOUT_S`` per
    chunk. The body records engine failures on the job and never raises for them; its own failures
    (database briefly locked…) retry."""

    def synthesize(job_id: str) -> None:
        run_job(job_id)

    def synthesize_long(job_id: str) -> None:
        run_job(job_id)

    options = {"broker": broker, "max_retries": 3, "min_backoff": 200, "max_backoff": 5000}
    short = dramatiq.actor(synthesize, actor_name=SYNTHESIZE_ACTOR, queue_name=SPEECH_QUEUE,
                           priority=SHORT_PRIORITY, **options)
    long = dramatiq.actor(synthesize_long, actor_name=SYNTHESIZE_LONG_ACTOR, queue_name=SPEECH_LONG_QUEUE,
                          priority=LONG_PRIORITY, **options)

    def enqueue(job_id: str, chunks: int = 1) -> None:
        actor = short if chunks <= 1 else long
        actor.send_with_options(args=(job_id,), time_limit=int(settings.job_timeout_s * 1000 * max(1, chunks)))

    return enqueue


def start_worker(broker: dramatiq.Broker, threads: int) -> dramatiq.Worker:
    # The idle poll of the worker's threads and consumers (ms). In-process queues wake a waiting thread the
    # moment a message arrives, so a long poll costs no latency there and saves idle wake-ups; Redis
    # consumers back off up to this long when idle, so it bounds their pick-up delay and stays short.
    timeout = 200 if isinstance(broker, RedisBroker) else 1000
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=timeout)
    worker.start()
    return worker
