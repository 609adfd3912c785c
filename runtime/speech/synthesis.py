"""The body of the synthesis actor: claim a job, produce its audio through the engine chain, cache it.

Idempotent: a job that already finished, or that a live worker is running, is left alone; a job whose
audio is already cached completes without synthesis. So a message delivered twice (recovery at start-up,
broker redelivery) never synthesises twice.
"""

from __future__ import annotations

import time
import wave

from dramatiq.middleware import Interrupt
from loguru import logger
from peewee import fn

from runtime.speech.audio import Pcm, decode_wav, encode
from runtime.speech.breakers import CircuitOpen, EngineBreakers
from runtime.speech.engines import Engine, EngineError, Voice
from runtime.speech.plan import chunk_count, chunk_key, chunk_speed, plan
from runtime.speech.request import SpeechRequest
from runtime.speech.ssml import is_ssml
from runtime.speech.voices import VoiceCatalog
from runtime.workers import Liveness
from storage.cache import AudioCache
from storage.models import FAILED, QUEUED, RUNNING, SUCCEEDED, CacheEntry, Job, utcnow


class Synthesizer:
    def __init__(self, engines: dict[str, Engine], catalog: VoiceCatalog, cache: AudioCache,
                 liveness: Liveness, publish, breakers: EngineBreakers | None = None) -> None:
        self.breakers = breakers or EngineBreakers([], 1, 1)
        self.engines = engines
        self.catalog = catalog
        self.cache = cache
        self.liveness = liveness
        self.publish = publish
        self.worker_id = ""  # set by the worker that runs this synthesizer

    def run(self, job_id: str) -> None:
        job = Job.get_or_none(Job.id == job_id)
        if job is None:
            logger.warning("job {} does not exist; message dropped", job_id)
            return
        if job.status in (SUCCEEDED, FAILED):
            return
        if job.status == RUNNING and self.liveness.is_alive(job.worker_id):
            return
        claimed = (Job.update(status=RUNNING, worker_id=self.worker_id, started_at=utcnow(),
                              attempts=Job.attempts + 1)
                   .where((Job.id == job_id) & (Job.status == job.status)
                          & ((Job.worker_id == job.worker_id) if job.worker_id else Job.worker_id.is_null()))
                   .execute())
        if not claimed:
            return  # someone else claimed it between our read and our update
        try:
            self._produce(job)
        except Interrupt:
            # Dramatiq's time limit interrupts the thread (a BaseException): record it, then let it unwind.
            self._fail(job_id, "synthesis took longer than the job time limit (JOB_TIMEOUT_S)")
            raise
        except Exception as exc:
            self._fail(job_id, str(exc))
        finally:
            self.publish(job_id)

    def _fail(self, job_id: str, error: str) -> None:
        logger.warning("job {} failed: {}", job_id, error)
        Job.update(status=FAILED, error=error[:2000], finished_at=utcnow()).where(
            (Job.id == job_id) & (Job.worker_id == self.worker_id)).execute()

    def _produce(self, job: Job) -> None:
        voice = self.catalog.resolve(job.voice)
        request = SpeechRequest(text=job.text, voice=voice, format=job.format, speed=job.speed)
        chain = self.catalog.chain(voice)
        errors: list[str] = []
        for position, candidate in enumerate(chain):
            engine = self.engines.get(candidate.engine)
            if engine is None:
                errors.append(f"engine {candidate.engine} is not available")
                continue
            key = request.key_for(candidate, engine.identity())
            if self.cache.exists(key, job.format):
                self._succeed(job, key, candidate.engine, position > 0, from_cache=True)
                return
            # Which engine is speaking now: a streaming response follows this engine's chunks.
            Job.update(engine=candidate.engine, speaking_voice=candidate.id, fallback=position > 0).where(
                (Job.id == job.id) & (Job.worker_id == self.worker_id)).execute()
            start = time.perf_counter()
            try:
                pcm = self.breakers.call(candidate.engine, self._speak, job, engine, candidate)
            except CircuitOpen:
                errors.append(f"engine {candidate.engine} skipped: its circuit is open after repeated failures")
                logger.info("job {}: engine {} skipped (circuit open)", job.id, candidate.engine)
                continue
            except EngineError as exc:
                errors.append(str(exc))
                logger.warning("engine {} failed for job {}: {}", candidate.engine, job.id, exc)
                continue
            self._store(key, job.format, encode(pcm, job.format), candidate, pcm.seconds)
            logger.info("job {} synthesised by {} in {:.3f}s ({:.2f}s audio)", job.id, candidate.engine,
                        time.perf_counter() - start, pcm.seconds)
            self._succeed(job, key, candidate.engine, position > 0, from_cache=False, seconds=pcm.seconds)
            return
        raise EngineError("every engine failed: " + "; ".join(errors))

    def _speak(self, job: Job, engine: Engine, voice: Voice) -> Pcm:
        """The job's audio from ``engine``: one synthesis for one plain sentence; otherwise chunk by chunk
        (sentences; SSML segments with their own rate and breaks), each chunk cached on its own so texts
        that share sentences reuse them, stitched with short fades and pauses. Progress goes to the job row."""
        items = plan(job.text, voice.language)
        total = chunk_count(items)
        if total == 1 and not is_ssml(job.text):
            pcm = engine.synthesize(job.text, voice.name, job.speed)
            self._progress(job, 1, 1, 0)
            return pcm
        model = engine.identity()
        parts: list[Pcm | float] = []
        done = cached = 0
        for item in items:
            if not item.text:
                parts.append(item.pause_s)
                continue
            key = chunk_key(voice.engine, model, voice.name, item, job.speed)
            try:
                part = decode_wav(self.cache.path(key, "wav").read_bytes())
                cached += 1
            except (FileNotFoundError, ValueError, EOFError, wave.Error):  # missing or unreadable: synthesise
                part = engine.synthesize(item.text, voice.name, chunk_speed(item, job.speed))
                self._store(key, "wav", encode(part, "wav"), voice, part.seconds)
            parts.append(part.faded())
            done += 1
            self._progress(job, total, done, cached)
        return Pcm.concat(parts)

    def _progress(self, job: Job, total: int, done: int, cached: int) -> None:
        Job.update(chunks_total=total, chunks_done=done, chunks_cached=cached).where(
            (Job.id == job.id) & (Job.worker_id == self.worker_id)).execute()
        self.publish(job.id)  # wakes streaming responses that wait for this chunk

    def _store(self, key: str, fmt: str, data: bytes, voice: Voice, seconds: float) -> None:
        """Write a cache file atomically and index it."""
        self.cache.write(key, fmt, data)
        now = utcnow()
        CacheEntry.insert(key=key, format=fmt, path=self.cache.relpath(key, fmt), size_bytes=len(data),
                          engine=voice.engine, voice=voice.id, audio_seconds=seconds, created_at=now,
                          last_access_at=now).on_conflict(
            conflict_target=[CacheEntry.key], update={CacheEntry.last_access_at: now}).execute()

    def _succeed(self, job: Job, key: str, engine: str, fallback: bool, *, from_cache: bool,
                 seconds: float | None = None) -> None:
        if seconds is None:
            entry = CacheEntry.get_or_none(CacheEntry.key == key)
            seconds = entry.audio_seconds if entry else None
        Job.update(status=SUCCEEDED, audio_key=key, engine=engine, fallback=fallback, from_cache=from_cache,
                   finished_at=utcnow(), audio_seconds=seconds, error=None).where(
            (Job.id == job.id) & (Job.worker_id == self.worker_id)).execute()


def recover(liveness: Liveness, enqueue) -> int:
    """Re-enqueue every job that is queued, or running on a worker that is gone. Returns the count.

    The jobs table is the truth; the broker may have lost the message (embedded mode keeps messages in
    memory). Duplicates are harmless: the actor is idempotent."""
    count = 0
    for job in Job.select(Job.id, Job.status, Job.worker_id, Job.chunks_total).where(
            Job.status.in_([QUEUED, RUNNING])):
        if job.status == RUNNING and liveness.is_alive(job.worker_id):
            continue
        enqueue(job.id, job.chunks_total)
        count += 1
    if count:
        logger.info("recovered {} unfinished job(s)", count)
    return count


def queue_depth(caller: str | None = None) -> int:
    """Jobs waiting for a worker: all of them, or one caller's."""
    query = Job.select(fn.COUNT(Job.id)).where(Job.status == QUEUED)
    if caller is not None:
        query = query.where(Job.caller == caller)
    return query.scalar() or 0
