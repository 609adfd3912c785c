"""Everything a process needs, built from settings in one place and passed in (no module globals):
database, cache, engines, voices, broker + actor, job events, and — in a worker — heartbeat and
``dramatiq.Worker``. Used by the web app (embedded mode runs the worker inside it) and by
``python -m runtime worker``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import dramatiq
from loguru import logger
from peewee import Database

from runtime import metrics
from runtime.broker import build_broker, declare_synthesis, start_worker
from runtime.events import JobEvents
from runtime.response_cache import ResponseCache
from runtime.serving import AudioServer
from runtime.settings import Settings
from runtime.speech.breakers import EngineBreakers
from runtime.speech.engines import Engine, build_engines, isolate_engines
from runtime.speech.service import SpeechService
from runtime.speech.synthesis import Synthesizer, recover
from runtime.speech.voices import VoiceCatalog
from runtime.workers import Heartbeat, Liveness
from storage.access import AccessRecorder
from storage.backup import backup, sqlite_path
from storage.cache import AudioCache
from storage.db import open_database
from storage.migrations import migrate
from storage.models import EngineProbe, utcnow


def pre_migration_backup(settings: Settings):
    """The backup taken before migrations change an existing SQLite database (Postgres: none; back it up with
    pg_dump before an upgrade)."""
    if sqlite_path(settings.database_url) is None:
        return None
    return lambda label: logger.info("backed the database up before migrating: {}", backup(
        settings.database_url, settings.data_dir / "backups", settings.backup_keep + 1, label)["file"])


@dataclass
class Services:
    settings: Settings
    db: Database
    cache: AudioCache
    audio: AudioServer
    engines: dict[str, Engine]
    catalog: VoiceCatalog
    events: JobEvents
    liveness: Liveness
    broker: dramatiq.Broker
    synthesizer: Synthesizer
    speech: SpeechService
    breakers: EngineBreakers
    responses: ResponseCache
    started_at: float = field(default_factory=time.time)
    accesses: AccessRecorder = field(default_factory=AccessRecorder)
    _stop_probes: threading.Event = field(default_factory=threading.Event)
    heartbeat: Heartbeat | None = None
    worker: dramatiq.Worker | None = None
    load_errors: dict[str, str] = field(default_factory=dict)
    disabled_engines: dict[str, str] = field(default_factory=dict)  # engine -> why it was not set up

    @classmethod
    def build(cls, settings: Settings, responses: ResponseCache | None = None) -> Services:
        db = open_database(settings.database_url)
        migrate(db, pre_migration_backup(settings))
        cache = AudioCache(settings.cache_dir)
        if removed := cache.remove_temporaries():
            logger.info("removed {} partial cache file(s) left by a crash", removed)
        disabled: dict[str, str] = {}
        engines = isolate_engines(build_engines(settings, disabled), settings)
        for engine in engines.values():
            engine.identity()  # hash model files once, up front
        catalog = VoiceCatalog(engines, settings)
        events = JobEvents(settings.redis_url)
        liveness = Liveness(settings.worker_dead_after_s)
        broker = build_broker(settings)
        breakers = EngineBreakers(list(engines), settings.engine_fail_max, settings.engine_cooldown_s,
                                  settings.redis_url, scope=settings.database_url)
        synthesizer = Synthesizer(engines, catalog, cache, liveness, events.publish, breakers)
        enqueue = declare_synthesis(broker, synthesizer.run, settings)
        speech = SpeechService(engines, catalog, cache, events, enqueue, settings.queue_max_depth,
                               settings.queue_max_per_caller)
        responses = responses if responses is not None else ResponseCache(settings.memory_cache_bytes)
        audio = AudioServer(cache, settings.memory_cache_bytes, settings.memory_cache_file_max_bytes,
                            settings.accel_redirect_prefix, responses)
        services = cls(settings, db, cache, audio, engines, catalog, events, liveness, broker, synthesizer, speech,
                       breakers, responses)
        speech.capacity = services.worker_threads
        services.disabled_engines = disabled
        # cache hits are recorded (in memory, written every 30 s) for the eviction's LRU order
        speech.touch = synthesizer.touch = audio.touch = services.accesses.touch
        synthesizer.on_disk_full = services.evict_soon
        responses.on_hit = services.accesses.touch_path
        services.accesses.start()
        metrics.initialise(engines)
        return services

    def evict_soon(self) -> None:
        """Ask the scheduler's leader (this process or another) for an eviction run now, once at a time."""
        from scheduler.runner import REQUESTED, request_run
        from storage.models import SchedulerRun

        try:
            if not SchedulerRun.select().where((SchedulerRun.job == "evict")
                                               & (SchedulerRun.outcome.in_([REQUESTED, "running"]))).exists():
                request_run("evict", "disk-full")
        except Exception as exc:
            logger.error("could not ask for an eviction run: {}", exc)

    def worker_threads(self) -> int:
        """Synthesis threads alive now: this process's worker, or every live worker process (Redis mode,
        assuming they share WORKER_THREADS)."""
        if self.settings.embedded:
            return self.settings.worker_threads if self.worker is not None else 0
        return len(self.liveness.live_workers()) * self.settings.worker_threads

    def ready_engines(self) -> list[str]:
        return [name for name, engine in self.engines.items() if engine.loaded]

    def load_engines(self) -> None:
        """Load every engine's model into this process (Piper takes a few seconds), then probe each with
        its canary phrase; the results (ok, latency, error) are stored for /health/tts and /readyz."""
        for name, engine in self.engines.items():
            start = time.perf_counter()
            try:
                engine.load()
            except Exception as exc:
                self.load_errors[name] = str(exc)
                logger.error("engine {} failed to load: {}", name, exc)
                self._record_probe(name, False, time.perf_counter() - start, f"could not load: {exc}")
                continue
            logger.info("engine {} loaded in {:.2f}s", name, time.perf_counter() - start)
            self.probe(name, engine)

    def probe(self, name: str, engine: Engine) -> bool:
        """One canary synthesis of ``engine``, recorded for /health/tts and /readyz."""
        probe = engine.probe()
        self._record_probe(name, probe.ok, probe.latency_s, probe.error)
        (logger.debug if probe.ok else logger.error)("engine {} canary: {} in {:.3f}s {}", name,
                                                     "ok" if probe.ok else "FAILED", probe.latency_s, probe.error)
        return probe.ok

    def _probe_loop(self) -> None:
        """Every ``PROBE_INTERVAL_S``, a canary of each loaded engine in this worker: readiness follows what
        the engines do now, not what they did at start-up."""
        while not self._stop_probes.wait(self.settings.probe_interval_s):
            for name, engine in self.engines.items():
                if engine.loaded and not self._stop_probes.is_set():
                    try:
                        self.probe(name, engine)
                    except Exception as exc:  # the database is away: the next round tries again
                        logger.warning("canary of {} not recorded: {}", name, exc)

    def _record_probe(self, engine: str, ok: bool, latency_s: float, error: str) -> None:
        worker_id = self.heartbeat.id if self.heartbeat is not None else "unknown"
        EngineProbe.insert(engine=engine, worker_id=worker_id, ok=ok, latency_s=round(latency_s, 4),
                           error=error[:2000] or None, probed_at=utcnow()).on_conflict(
            conflict_target=[EngineProbe.engine, EngineProbe.worker_id],
            update={EngineProbe.ok: ok, EngineProbe.latency_s: round(latency_s, 4),
                    EngineProbe.error: error[:2000] or None, EngineProbe.probed_at: utcnow()}).execute()

    def start_worker(self, *, load_in_background: bool, preload: bool = True) -> None:
        """Run synthesis in this process: heartbeat, engines, ``dramatiq.Worker``, then recovery.
        ``preload=False`` (the command line's ``say`` and ``batch``): no engine is loaded before its first
        synthesis and no canaries run."""
        self.heartbeat = Heartbeat(self.liveness, self.settings.worker_heartbeat_s, self.ready_engines)
        self.synthesizer.worker_id = self.heartbeat.id
        if preload and load_in_background:
            threading.Thread(target=self.load_engines, name="engine-loader", daemon=True).start()
        elif preload:
            self.load_engines()
        self.heartbeat.start()
        self._stop_probes.clear()
        if preload:
            threading.Thread(target=self._probe_loop, name="engine-canaries", daemon=True).start()
        self.worker = start_worker(self.broker, self.settings.worker_threads)
        logger.info("worker {} started with {} thread(s)", self.heartbeat.id, self.settings.worker_threads)
        self.recover()

    def recover(self) -> int:
        return recover(self.liveness, self.speech.enqueue)

    def stop_worker(self) -> None:
        """Take no new job; wait for the ones running to finish (the queued ones stay queued for the next
        start). The first step of a shutdown, so a job that ends during the rest of it is not followed by
        the next one in the queue."""
        self._stop_probes.set()
        if self.worker is not None:
            self.worker.stop(timeout=int(self.settings.job_timeout_s * 1000))
            self.worker = None

    def close(self) -> None:
        self.stop_worker()
        self.accesses.stop()
        if self.heartbeat is not None:
            self.heartbeat.stop()
        for engine in self.engines.values():
            engine.close()
        self.events.stop()
        self.broker.close()
        self.db.close()
