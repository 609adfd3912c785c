"""The web side of the speech path: cache → single-flight job → wait for the worker.

Single-flight holds across every process: the database allows at most one unfinished job per cache key
(a partial unique index), so identical requests arriving together share one job and one synthesis.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger
from peewee import IntegrityError
from starlette.concurrency import run_in_threadpool

from runtime import logging as runtime_logging
from runtime import metrics
from runtime.errors import ApiError, SynthesisFailed, Timeout, Unavailable
from runtime.events import JobEvents
from runtime.speech.engines import Engine
from runtime.speech.plan import chunk_count, plan
from runtime.speech.request import SpeechRequest
from runtime.speech.synthesis import NO_SPACE, queue_depth
from runtime.speech.voices import VoiceCatalog
from storage.cache import AudioCache
from storage.models import ACTIVE_STATES, FAILED, QUEUED, SUCCEEDED, Job, JobState, job_state, utcnow


@dataclass(frozen=True)
class Rendered:
    """Audio that is in the cache and ready to serve."""

    key: str
    format: str
    engine: str
    fallback: bool
    cache_hit: bool
    job_id: str | None = None


_HIT, _MISS = metrics.CACHE_REQUESTS.labels("hit"), metrics.CACHE_REQUESTS.labels("miss")


class SpeechService:
    POLL_S = 0.5  # safety net when a notification is lost

    def __init__(self, engines: dict[str, Engine], catalog: VoiceCatalog, cache: AudioCache,
                 events: JobEvents, enqueue: Callable[[str, int], None], max_depth: int = 200,
                 max_per_caller: int = 0) -> None:
        self.max_depth = max_depth
        self.max_per_caller = max_per_caller
        self.capacity: Callable[[], int] = lambda: 1  # live synthesis threads; set by Services
        self.touch: Callable[[str], None] = lambda key: None  # records a cache hit (storage.access)
        self.engines = engines
        self.catalog = catalog
        self.cache = cache
        self.events = events
        self.enqueue = enqueue

    def key(self, req: SpeechRequest) -> str:
        return req.key_for(req.voice, self.engines[req.voice.engine].identity())

    def cached(self, req: SpeechRequest) -> str | None:
        """The cache key if the requested audio is already on disk."""
        key = self.key(req)
        if self.cache.exists(key, req.format):
            self.touch(key)
            _HIT.inc()
            return key
        _MISS.inc()
        return None

    def submit(self, req: SpeechRequest, caller: str = "") -> tuple[Job, bool]:
        """Find the unfinished job for this audio or create and enqueue one. Returns (job, created).
        A job already succeeded (cache hit between checks) comes back with status ``succeeded``.
        ``caller`` (``runtime.callers.caller_of``) is who asked: per-caller fairness counts against it."""
        key = self.key(req)
        chunks = chunk_count(plan(req.text, req.voice.language))
        active_job = (Job.key == key) & (Job.status.in_(ACTIVE_STATES))
        for attempt in range(5):
            if attempt:  # the job could not be created: one for this key is unfinished, or just finished
                active = Job.get_or_none(active_job)
                if active is not None:
                    return active, False
                if self.cache.exists(key, req.format):
                    return self.record_hit(req, key), False
            try:
                self._admit(caller)
            except ApiError:
                # The queue is full, but a request identical to a waiting job shares it all the same.
                active = Job.get_or_none(active_job)
                if active is None:
                    raise
                return active, False
            try:
                # At most one unfinished job per key (a partial unique index): creating it is the check.
                job = Job.create(id=uuid.uuid4().hex, key=key, status=QUEUED, text=req.text, voice=req.voice.id,
                                 format=req.format, speed=req.speed, created_at=utcnow(), chunks_total=chunks,
                                 caller=caller or None, function=runtime_logging.function.get() or None)
            except IntegrityError:
                continue  # another request created it a moment ago: share that one
            try:
                self.enqueue(job.id, chunks)
            except Exception as exc:
                # The job is recorded and will be recovered when the broker is back; nothing is lost.
                logger.error("could not enqueue job {}: {}", job.id, exc)
                raise Unavailable("the synthesis queue is unreachable; the job is kept and will run when it "
                                  "is back", code="queue_unavailable", headers={"Retry-After": "5"}) from exc
            return job, True
        raise Unavailable("could not register the job, try again", code="busy", headers={"Retry-After": "1"})

    def _admit(self, caller: str = "") -> None:
        """Back-pressure: refuse a new job while ``QUEUE_MAX_DEPTH`` jobs wait. 429 with a Retry-After from
        the measured time per job; 503 when no worker is alive to drain the queue. Fairness: with
        ``QUEUE_MAX_PER_CALLER``, one caller's waiting jobs cannot fill the queue for everyone else."""
        depth = queue_depth()
        if depth < self.max_depth:
            if self.max_per_caller and caller:
                mine = queue_depth(caller)
                if mine >= self.max_per_caller:
                    wait = retry_after_s(mine, max(1, self.capacity()))
                    raise ApiError(f"you have {mine} jobs waiting, the most one caller may have; retry in about "
                                   f"{wait}s", code="caller_queue_full", status=429, headers={"Retry-After": str(wait)})
            return
        threads = self.capacity()
        if threads <= 0:
            raise Unavailable(f"the synthesis queue is full ({depth} jobs) and no worker is running",
                              code="no_workers", headers={"Retry-After": "30"})
        wait = retry_after_s(depth, threads)
        raise ApiError(f"the synthesis queue is full ({depth} jobs waiting); retry in about {wait}s",
                       code="queue_full", status=429, headers={"Retry-After": str(wait)})

    def record_hit(self, req: SpeechRequest, key: str) -> Job:
        """A finished job for a request answered straight from the cache (so it has an id to look up)."""
        now = utcnow()
        return Job.create(id=uuid.uuid4().hex, key=key, status=SUCCEEDED, text=req.text, voice=req.voice.id,
                          format=req.format, speed=req.speed, audio_key=key, engine=req.voice.engine,
                          from_cache=True, created_at=now, started_at=now, finished_at=now, chunks_total=0,
                          function=runtime_logging.function.get() or None)

    async def wait(self, job_id: str, timeout_s: float) -> Job:
        """Wait up to ``timeout_s`` seconds for the job to finish; returns its latest state."""
        await self.wait_state(job_id, timeout_s)
        return await run_in_threadpool(Job.get_by_id, job_id)

    async def wait_state(self, job_id: str, timeout_s: float) -> JobState:
        """Wait up to ``timeout_s`` seconds for the job to finish; returns its latest status and audio."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self.events.subscribe(job_id) as finished:
            while True:
                state = await run_in_threadpool(job_state, job_id)
                if state is None:
                    raise SynthesisFailed(f"job {job_id} no longer exists")
                remaining = deadline - time.monotonic()
                if state.status not in ACTIVE_STATES or remaining <= 0:
                    return state
                try:
                    await asyncio.wait_for(finished.wait(), timeout=min(remaining, self.POLL_S))
                except TimeoutError:
                    pass
                finished.clear()

    async def render(self, req: SpeechRequest, timeout_s: float, caller: str = "") -> Rendered:
        """Audio for ``req`` in the cache: at once on a hit, else after synthesis. Raises typed errors."""
        key = self.cached(req)
        if key is not None:
            return Rendered(key, req.format, req.voice.engine, False, cache_hit=True)
        job, _ = await run_in_threadpool(self.submit, req, caller)
        return await self.outcome(job, timeout_s)

    async def outcome(self, job: Job | JobState, timeout_s: float) -> Rendered:
        """Wait for a submitted job and return its audio, or raise its failure or a timeout."""
        if job.status != SUCCEEDED:
            job = await self.wait_state(job.id, timeout_s)
        if job.status == SUCCEEDED:
            return Rendered(job.audio_key, job.format, job.engine, job.fallback, cache_hit=job.from_cache,
                            job_id=job.id)
        if job.status == FAILED:
            if (job.error or "").startswith(NO_SPACE):
                raise ApiError(job.error, code=NO_SPACE, status=507, headers={"Retry-After": "5"})
            raise SynthesisFailed(f"synthesis failed: {job.error}")
        raise Timeout(f"the audio is not ready after {timeout_s:.0f}s; job {job.id} goes on: "
                      f"GET /api/jobs/{job.id}", code="synthesis_timeout")


def retry_after_s(depth: int, threads: int, default_job_s: float = 2.0) -> int:
    """Seconds until ``depth`` queued jobs drain over ``threads``, from the last 50 synthesised jobs."""
    recent = (Job.select(Job.started_at, Job.finished_at)
              .where((Job.status == SUCCEEDED) & (Job.from_cache == False) & Job.started_at.is_null(False))  # noqa: E712
              .order_by(Job.finished_at.desc()).limit(50))
    durations = [(j.finished_at - j.started_at).total_seconds() for j in recent if j.finished_at]
    per_job = sum(durations) / len(durations) if durations else default_job_s
    return max(1, min(3600, math.ceil(depth * per_job / max(1, threads))))


def job_view(job: Job) -> dict:
    """A job as callers see it (``GET /api/jobs/{id}``, ``POST /api/synthesize``)."""

    def iso(value):
        return value.isoformat() + "Z" if value else None

    timings = {"created_at": iso(job.created_at), "started_at": iso(job.started_at),
               "finished_at": iso(job.finished_at), "queued_s": None, "synthesis_s": None}
    if job.started_at:
        timings["queued_s"] = round((job.started_at - job.created_at).total_seconds(), 3)
    if job.started_at and job.finished_at:
        timings["synthesis_s"] = round((job.finished_at - job.started_at).total_seconds(), 3)
    done = job.status == SUCCEEDED
    return {
        "id": job.id,
        "status": job.status,
        "status_url": f"/api/jobs/{job.id}",
        "audio_url": f"/audio/{job.audio_key}.{job.format}" if done else None,
        "voice": job.voice,
        "format": job.format,
        "speed": job.speed,
        "characters": len(job.text),
        "engine": job.engine,
        "fallback": job.fallback,
        "from_cache": job.from_cache,
        "audio_seconds": job.audio_seconds,
        "attempts": job.attempts,
        "progress": {"chunks_total": job.chunks_total, "chunks_done": job.chunks_done,
                     "chunks_cached": job.chunks_cached},
        "worker_id": job.worker_id,
        "error": job.error,
        "timings": timings,
    }
