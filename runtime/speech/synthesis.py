"""The body of the synthesis actor: claim a job, produce its audio through the engine chain, cache it.

Idempotent: a job that already finished, or that a live worker is running, is left alone; a job whose
audio is already cached completes without synthesis. So a message delivered twice (recovery at start-up,
broker redelivery) never synthesises twice.
"""

from __future__ import annotations

import errno
import time
import wave
from collections.abc import Callable

from dramatiq.middleware import Interrupt
from loguru import logger
from peewee import DatabaseError, InterfaceError, fn

from runtime import metrics
from runtime.speech.audio import Pcm, decode_wav, encode
from runtime.speech.breakers import CircuitOpen, EngineBreakers
from runtime.speech.engines import Engine, EngineError, Voice
from runtime.speech.engines.base import Pending
from runtime.speech.plan import chunk_count, chunk_key, chunk_speed, plan
from runtime.speech.request import SpeechRequest
from runtime.speech.ssml import is_ssml
from runtime.speech.voices import VoiceCatalog
from runtime.workers import Liveness
from storage.cache import AudioCache
from storage.models import FAILED, QUEUED, RUNNING, SUCCEEDED, CacheEntry, Job, utcnow

STORAGE_ERRORS = (DatabaseError, InterfaceError, OSError)  # the database or the disk, not the engine
NO_SPACE = "insufficient_storage"  # the prefix of the error of a job that found the cache volume full
LOOK_AHEAD_CHUNKS = 4  # how far a job looks for its next sentence to queue ahead
SILENCE_S, SILENCE_RATE = 0.1, 22050  # the answer to a text with nothing to speak
PROGRESS_EVERY_S = 0.5  # a job's progress row is written at most this often (and when it ends)


class _Progress:
    """Writes a job's progress (chunks done, chunks from the cache) at most every ``PROGRESS_EVERY_S``:
    a row update per sentence cost more Python (query building) than the rest of the job's bookkeeping."""

    def __init__(self, write: Callable[[int, int], None]) -> None:
        self._write = write
        self._last = 0.0
        self._unwritten: tuple[int, int] | None = None

    def __call__(self, done: int, cached: int, final: bool = False) -> None:
        self._unwritten = (done, cached)
        if final or time.monotonic() - self._last >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self._unwritten is not None:
            self._write(*self._unwritten)
            self._unwritten = None
            self._last = time.monotonic()


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
        self.touch: Callable[[str], None] = lambda key: None  # records a reused sentence (storage.access)
        self.on_disk_full: Callable[[], None] = lambda: None  # asks for an eviction run now (Services)

    def run(self, job_id: str) -> None:
        job = Job.get_or_none(Job.id == job_id)
        if job is None:
            logger.warning("job {} does not exist; message dropped", job_id)
            return
        if job.status in (SUCCEEDED, FAILED):
            return
        if job.status == RUNNING and self.liveness.is_alive(job.worker_id):
            return
        # Claiming also says which voice speaks (the requested one; a fallback updates it): a streaming
        # response follows that voice's chunks.
        claimed = (Job.update(status=RUNNING, worker_id=self.worker_id, started_at=utcnow(),
                              attempts=Job.attempts + 1, engine=job.voice.partition(":")[0],
                              speaking_voice=job.voice, fallback=False)
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
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                self._requeue(job_id, exc)
                raise  # Dramatiq retries the message, with backoff
            # The cache volume is full: the caller gets 507 at once (not a wait until its timeout), and
            # eviction runs now; the same request succeeds again once it has freed space.
            self._fail(job_id, f"{NO_SPACE}: the audio cache's volume is full; eviction runs now, retry shortly")
            self.on_disk_full()
        except STORAGE_ERRORS as exc:
            self._requeue(job_id, exc)
            raise
        except Exception as exc:
            self._fail(job_id, str(exc))
        finally:
            self.publish(job_id)

    def _requeue(self, job_id: str, exc: BaseException) -> None:
        """A database or disk error is not the text's fault nor the engine's: the job goes back to the queue
        and Dramatiq's retry runs it again (if the database cannot take even this, recovery at the next
        start or the reaper picks the job up)."""
        logger.warning("job {}: storage error, queued again for a retry: {}", job_id, exc)
        try:
            Job.update(status=QUEUED, worker_id=None).where(
                (Job.id == job_id) & (Job.worker_id == self.worker_id)).execute()
        except STORAGE_ERRORS as again:
            logger.error("job {} could not be queued again: {}", job_id, again)

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
            if candidate.id != job.voice:  # a fallback speaks now: streaming responses follow its chunks
                Job.update(engine=candidate.engine, speaking_voice=candidate.id, fallback=position > 0).where(
                    (Job.id == job.id) & (Job.worker_id == self.worker_id)).execute()
            start = time.perf_counter()
            try:
                pcm, whole = self.breakers.call(candidate.engine, self._speak, job, engine, candidate,
                                                not_engine=STORAGE_ERRORS)
            except CircuitOpen:
                errors.append(f"engine {candidate.engine} skipped: its circuit is open after repeated failures")
                logger.info("job {}: engine {} skipped (circuit open)", job.id, candidate.engine)
                metrics.SYNTHESES.labels(candidate.engine, "skipped").inc()
                continue
            except EngineError as exc:
                errors.append(str(exc))
                logger.warning("engine {} failed for job {}: {}", candidate.engine, job.id, exc)
                metrics.SYNTHESES.labels(candidate.engine, "failed").inc()
                continue
            took = time.perf_counter() - start
            metrics.SYNTHESES.labels(candidate.engine, "ok").inc()
            metrics.SYNTHESIS_SECONDS.labels(candidate.engine).observe(took)
            if pcm.seconds > 0:
                metrics.REAL_TIME_FACTOR.labels(candidate.engine).observe(took / pcm.seconds)
            if position > 0:
                metrics.FALLBACKS.labels(candidate.engine).inc()
            self._store(key, job.format, encode(pcm, job.format), candidate, pcm.seconds)
            logger.info("job {} synthesised by {} in {:.3f}s ({:.2f}s audio)", job.id, candidate.engine,
                        took, pcm.seconds)
            self._succeed(job, key, candidate.engine, position > 0, from_cache=False, seconds=pcm.seconds,
                          whole=whole)
            return
        raise EngineError("every engine failed: " + "; ".join(errors))

    def _speak(self, job: Job, engine: Engine, voice: Voice) -> tuple[Pcm, bool]:
        """The job's audio from ``engine``: one synthesis for one plain sentence; otherwise chunk by chunk
        (sentences; SSML segments with their own rate and breaks), each chunk cached on its own so texts
        that share sentences reuse them, stitched with short fades and pauses. Progress goes to the job row.
        Returns the audio and whether it was synthesised in one piece (its progress is written on success)."""
        items = plan(job.text, voice.language)
        total = chunk_count(items)
        if total == 0:  # nothing to speak (".", emoji, SSML of breaks only): a short silence
            return Pcm.silence(SILENCE_S, SILENCE_RATE), True
        if total == 1 and not is_ssml(job.text):
            return engine.synthesize(job.text, voice.name, job.speed), True
        model = engine.identity()
        chunks = [(item, chunk_key(voice.engine, model, voice.name, item, job.speed)) for item in items if item.text]
        # which sentences this job needs, so cache eviction spares them while it runs (one statement per job)
        Job.update(chunk_keys=",".join(key for _, key in chunks)).where(Job.id == job.id).execute()
        ahead: dict[int, Pending] = {}  # chunk number -> synthesis asked for before its turn

        def ask(n: int, queue_behind: bool = False) -> Pending:
            item = chunks[n][0]
            return engine.submit(item.text, voice.name, chunk_speed(item, job.speed), queue_behind=queue_behind)

        def look_ahead(n: int) -> None:
            """Keep the next sentence that is not cached queued (one at most, looking a few sentences
            ahead), so the engine never idles while this thread stores the last one and updates the job.
            A sentence said earlier in the text is skipped: it will be in the cache by its turn."""
            if ahead:
                return
            earlier = {key for _, key in chunks[max(0, n - 1):n]}
            for m in range(n, min(len(chunks), n + LOOK_AHEAD_CHUNKS)):
                key = chunks[m][1]
                if key not in earlier and not self.cache.exists(key, "wav"):
                    # asked while the first sentence (the one a listener waits for) is synthesised, it
                    # may wait behind it rather than take cores from it
                    ahead[m] = ask(m, queue_behind=n == 1)
                    return
                earlier.add(key)

        parts: list[Pcm | float] = []
        done = cached = 0
        rows: list[dict] = []  # index rows of the sentences synthesised, written together at the end
        progress = _Progress(lambda d, c: self._progress(job, total, d, c))
        try:
            for item in items:
                if not item.text:
                    parts.append(item.pause_s)
                    continue
                key = chunks[done][1]
                pending = ahead.pop(done, None)
                part = None if pending is not None else self._cached_chunk(key)
                if part is None and pending is None:
                    pending = ask(done)
                look_ahead(done + 1)
                if part is None:
                    part = pending.result()
                    rows.append(self._write(key, "wav", encode(part, "wav"), voice, part.seconds, durable=False))
                else:
                    cached += 1
                parts.append(part.faded())
                done += 1
                self.publish(job.id)  # wakes streaming responses that wait for this chunk (before the row write)
                progress(done, cached, final=done == total)
        finally:
            for pending in ahead.values():  # the job failed or gave up: no work for nobody
                pending.cancel()
            progress.flush()
            self._index(rows)
        return Pcm.concat(parts), False

    def _cached_chunk(self, key: str) -> Pcm | None:
        """A sentence already synthesised, or None when it is missing or unreadable (synthesise it again)."""
        try:
            pcm = decode_wav(self.cache.path(key, "wav").read_bytes())
        except (FileNotFoundError, ValueError, EOFError, wave.Error):
            return None
        self.touch(key)
        return pcm

    def _progress(self, job: Job, total: int, done: int, cached: int) -> None:
        Job.update(chunks_total=total, chunks_done=done, chunks_cached=cached).where(
            (Job.id == job.id) & (Job.worker_id == self.worker_id)).execute()

    def _store(self, key: str, fmt: str, data: bytes, voice: Voice, seconds: float) -> None:
        """Write a cache file atomically (with fsync) and index it."""
        self._index([self._write(key, fmt, data, voice, seconds)])

    def _write(self, key: str, fmt: str, data: bytes, voice: Voice, seconds: float, durable: bool = True) -> dict:
        """Write a cache file atomically; returns its index row."""
        self.cache.write(key, fmt, data, durable)
        now = utcnow()
        return {"key": key, "format": fmt, "path": self.cache.relpath(key, fmt), "size_bytes": len(data),
                "engine": voice.engine, "voice": voice.id, "audio_seconds": seconds, "created_at": now,
                "last_access_at": now}

    @staticmethod
    def _index(rows: list[dict]) -> None:
        """Index cache files, one statement for all of them (a file already indexed counts as used now)."""
        if rows:
            CacheEntry.insert_many(rows).on_conflict(
                conflict_target=[CacheEntry.key], update={CacheEntry.last_access_at: utcnow()}).execute()

    def _succeed(self, job: Job, key: str, engine: str, fallback: bool, *, from_cache: bool,
                 seconds: float | None = None, whole: bool = False) -> None:
        """Record the job's audio. ``whole``: it was synthesised in one piece (no chunk progress was written)."""
        if seconds is None:
            entry = CacheEntry.get_or_none(CacheEntry.key == key)
            seconds = entry.audio_seconds if entry else None
        progress = {"chunks_total": 1, "chunks_done": 1, "chunks_cached": 0} if whole else {}
        Job.update(status=SUCCEEDED, audio_key=key, engine=engine, fallback=fallback, from_cache=from_cache,
                   finished_at=utcnow(), audio_seconds=seconds, error=None, **progress).where(
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
