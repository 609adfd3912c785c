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

from runtime.broker import build_broker, declare_synthesis, start_worker
from runtime.events import JobEvents
from runtime.response_cache import ResponseCache
from runtime.serving import AudioServer
from runtime.settings import Settings
from runtime.speech.engines import Engine, build_engines
from runtime.speech.service import SpeechService
from runtime.speech.synthesis import Synthesizer, recover
from runtime.speech.voices import VoiceCatalog
from runtime.workers import Heartbeat, Liveness
from storage.cache import AudioCache
from storage.db import open_database
from storage.migrations import migrate


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
    responses: ResponseCache
    started_at: float = field(default_factory=time.time)
    heartbeat: Heartbeat | None = None
    worker: dramatiq.Worker | None = None
    load_errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, responses: ResponseCache | None = None) -> Services:
        db = open_database(settings.database_url)
        migrate(db)
        cache = AudioCache(settings.cache_dir)
        if removed := cache.remove_temporaries():
            logger.info("removed {} partial cache file(s) left by a crash", removed)
        engines = build_engines(settings)
        for engine in engines.values():
            engine.identity()  # hash model files once, up front
        catalog = VoiceCatalog(engines, settings)
        events = JobEvents(settings.redis_url)
        liveness = Liveness(settings.worker_dead_after_s)
        broker = build_broker(settings)
        synthesizer = Synthesizer(engines, catalog, cache, liveness, events.publish)
        enqueue = declare_synthesis(broker, synthesizer.run, settings)
        speech = SpeechService(engines, catalog, cache, events, enqueue, settings.queue_max_depth,
                               settings.queue_max_per_caller)
        responses = responses if responses is not None else ResponseCache(settings.memory_cache_bytes)
        audio = AudioServer(cache, settings.memory_cache_bytes, settings.memory_cache_file_max_bytes,
                            settings.accel_redirect_prefix, responses)
        services = cls(settings, db, cache, audio, engines, catalog, events, liveness, broker, synthesizer, speech,
                       responses)
        speech.capacity = services.worker_threads
        return services

    def worker_threads(self) -> int:
        """Synthesis threads alive now: this process's worker, or every live worker process (Redis mode,
        assuming they share WORKER_THREADS)."""
        if self.settings.embedded:
            return self.settings.worker_threads if self.worker is not None else 0
        return len(self.liveness.live_workers()) * self.settings.worker_threads

    def ready_engines(self) -> list[str]:
        return [name for name, engine in self.engines.items() if engine.loaded]

    def load_engines(self) -> None:
        """Load every engine's model into this process (Piper takes a few seconds)."""
        for name, engine in self.engines.items():
            start = time.perf_counter()
            try:
                engine.load()
            except Exception as exc:
                self.load_errors[name] = str(exc)
                logger.error("engine {} failed to load: {}", name, exc)
                continue
            logger.info("engine {} loaded in {:.2f}s", name, time.perf_counter() - start)

    def start_worker(self, *, load_in_background: bool) -> None:
        """Run synthesis in this process: heartbeat, engines, ``dramatiq.Worker``, then recovery."""
        self.heartbeat = Heartbeat(self.liveness, self.settings.worker_heartbeat_s, self.ready_engines)
        self.synthesizer.worker_id = self.heartbeat.id
        if load_in_background:
            threading.Thread(target=self.load_engines, name="engine-loader", daemon=True).start()
        else:
            self.load_engines()
        self.heartbeat.start()
        self.worker = start_worker(self.broker, self.settings.worker_threads)
        logger.info("worker {} started with {} thread(s)", self.heartbeat.id, self.settings.worker_threads)
        self.recover()

    def recover(self) -> int:
        return recover(self.liveness, self.speech.enqueue)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=int(self.settings.job_timeout_s * 1000))
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self.events.stop()
        self.broker.close()
        self.db.close()
