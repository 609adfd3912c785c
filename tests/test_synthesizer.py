"""The actor body is idempotent: done jobs and jobs a live worker runs are never synthesised again."""

from __future__ import annotations

import time
import uuid

import pytest

from runtime.broker import build_broker, declare_synthesis, start_worker
from runtime.settings import Settings
from runtime.speech.engines import Engine, Voice, build_engines
from runtime.speech.request import from_synthesize
from runtime.speech.synthesis import Synthesizer, recover
from runtime.speech.voices import VoiceCatalog
from runtime.workers import Heartbeat, Liveness
from storage.cache import AudioCache
from storage.db import open_database
from storage.migrations import migrate
from storage.models import CacheEntry, Job, WorkerHeartbeat, utcnow


@pytest.fixture()
def world(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us")
    engines = build_engines(settings)
    catalog = VoiceCatalog(engines, settings)
    liveness = Liveness(dead_after_s=5)
    published = []
    synth = Synthesizer(engines, catalog, AudioCache(tmp_path / "cache"), liveness, published.append)
    heartbeat = Heartbeat(liveness, 60, lambda: ["espeak"])
    heartbeat.start()
    synth.worker_id = heartbeat.id
    yield synth, catalog, published
    heartbeat.stop()
    db.close()


def make_job(catalog, text="Idempotent jobs.", status="queued", worker_id=None) -> Job:
    req = from_synthesize({"text": text, "voice": "espeak:en-us"}, catalog, 4096)
    return Job.create(id=uuid.uuid4().hex, key=uuid.uuid4().hex + uuid.uuid4().hex, status=status, text=req.text,
                      voice=req.voice.id, format="wav", speed=1.0, created_at=utcnow(), worker_id=worker_id)


def test_run_twice_synthesises_once(world):
    synth, catalog, published = world
    job = make_job(catalog)
    synth.run(job.id)
    synth.run(job.id)
    job = Job.get_by_id(job.id)
    assert job.status == "succeeded" and job.attempts == 1 and job.engine == "espeak"
    assert published == [job.id]  # one event, when it finished; the second run publishes nothing


def test_job_running_on_a_live_worker_is_left_alone(world):
    synth, catalog, _ = world
    WorkerHeartbeat.create(id="otherhost:1:abc", hostname="otherhost", pid=1, heartbeat_at=utcnow())
    job = make_job(catalog, status="running", worker_id="otherhost:1:abc")
    synth.run(job.id)
    assert Job.get_by_id(job.id).status == "running"
    assert recover(synth.liveness, lambda *_: pytest.fail("must not re-enqueue")) == 0


def test_job_of_a_dead_worker_is_taken_over(world):
    synth, catalog, _ = world
    job = make_job(catalog, status="running", worker_id="gone:1:abc")  # no heartbeat row at all
    enqueued = []
    assert recover(synth.liveness, lambda job_id, chunks: enqueued.append(job_id)) == 1 and enqueued == [job.id]
    synth.run(job.id)
    job = Job.get_by_id(job.id)
    assert job.status == "succeeded" and job.worker_id == synth.worker_id and job.attempts == 1


def test_second_job_for_cached_audio_does_not_synthesise(world):
    synth, catalog, _ = world
    first = make_job(catalog, "Shared words.")
    synth.run(first.id)
    second = make_job(catalog, "Shared words.")
    synth.run(second.id)
    second = Job.get_by_id(second.id)
    assert second.status == "succeeded" and second.from_cache is True
    assert second.audio_key == Job.get_by_id(first.id).audio_key


def test_unknown_job_is_ignored(world):
    synth, _, published = world
    synth.run("f" * 32)
    assert published == []


class _HangingEngine(Engine):
    """An engine of our own interface that never finishes (stands in for a stuck model)."""

    name = "espeak"

    def voices(self):
        return [Voice("espeak", "en-us", "en-US")]

    def identity(self):
        return "hanging"

    @property
    def loaded(self):
        return True

    def load(self):
        pass

    def _synthesize(self, text, voice, speed):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)  # Python-level loop, so Dramatiq's time-limit interrupt can land
        raise AssertionError("not interrupted")


def test_job_over_the_time_limit_fails_and_is_not_retried_forever(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us", job_timeout_s=1)
    engines = {"espeak": _HangingEngine()}
    catalog = VoiceCatalog(engines, settings)
    synth = Synthesizer(engines, catalog, AudioCache(tmp_path / "cache"), Liveness(5), lambda _: None)
    synth.worker_id = "test-worker"
    broker = build_broker(settings)
    enqueue = declare_synthesis(broker, synth.run, settings)
    worker = start_worker(broker, 1)
    try:
        job = make_job(catalog, "Never finishes.")
        enqueue(job.id, 1)
        deadline = time.monotonic() + 20
        while Job.get_by_id(job.id).status != "failed":
            assert time.monotonic() < deadline, Job.get_by_id(job.id).status
            time.sleep(0.05)
        job = Job.get_by_id(job.id)
        assert "time limit" in job.error and job.attempts == 1
        time.sleep(1.5)  # a retry of the message must not run the failed job again
        assert Job.get_by_id(job.id).attempts == 1
    finally:
        worker.stop()
        broker.close()
        db.close()


def test_unreadable_chunk_file_is_synthesised_again(world):
    synth, catalog, _ = world
    first = make_job(catalog, "Chunk one is here. Chunk two follows.")
    synth.run(first.id)
    chunk_files = [p for p in synth.cache.root.rglob("*.wav") if p.stem != Job.get_by_id(first.id).audio_key]
    assert len(chunk_files) == 2
    chunk_files[0].write_bytes(b"RIFF garbage that is not a wave file")
    second = make_job(catalog, "Chunk one is here. Chunk two follows. And a third.")
    synth.run(second.id)
    second = Job.get_by_id(second.id)
    assert second.status == "succeeded" and second.chunks_cached == 1 and second.chunks_done == 3


def test_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial(tmp_path):
    """eSpeak NG made to fail (fault injection in our own adapter), behind a real pybreaker circuit."""
    from runtime.speech.breakers import EngineBreakers
    from runtime.speech.engines import EngineError
    from runtime.speech.engines.espeak import EspeakEngine

    class Breakable(EspeakEngine):
        broken = True
        calls = 0

        def _synthesize(self, text, voice, speed):
            Breakable.calls += 1
            if self.broken:
                raise EngineError("espeak is broken for this test")
            return super()._synthesize(text, voice, speed)

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us")
    engine = Breakable()
    catalog = VoiceCatalog({"espeak": engine}, settings)
    breakers = EngineBreakers(["espeak"], fail_max=2, cooldown_s=0.3)
    synth = Synthesizer({"espeak": engine}, catalog, AudioCache(tmp_path / "cache"), Liveness(5), lambda _: None,
                        breakers)
    synth.worker_id = "test:1:abc"
    try:
        def run(text: str) -> Job:
            job = make_job(catalog, text=text)
            synth.run(job.id)
            return Job.get_by_id(job.id)

        assert run("First failure.").status == "failed"
        assert breakers.status("espeak")["state"] == "closed"
        assert run("Second failure opens it.").status == "failed"
        assert breakers.status("espeak") == {"state": "open", "consecutive_failures": 2, "cooldown_s": 0.3}
        calls = Breakable.calls
        skipped = run("Skipped while open.")
        assert skipped.status == "failed" and "circuit is open" in skipped.error
        assert Breakable.calls == calls  # the engine was not even tried

        Breakable.broken = False
        time.sleep(0.35)  # cool-down over: one trial (half-open) succeeds and closes the circuit
        assert run("The engine works again.").status == "succeeded"
        assert breakers.status("espeak")["state"] == "closed"
        assert breakers.status("espeak")["consecutive_failures"] == 0
    finally:
        db.close()


def test_engine_deadline_gives_up_on_a_hung_call():
    from runtime.speech.engines import EngineError
    from runtime.speech.engines.espeak import EspeakEngine

    class Hanging(EspeakEngine):
        hang_s = 0.0

        def _synthesize(self, text, voice, speed):
            if self.hang_s < 0:
                raise MemoryError("out of memory in the engine")
            time.sleep(self.hang_s)
            return super()._synthesize(text, voice, speed)

    engine = Hanging()
    engine.deadline_s = 0.5
    assert engine.synthesize("Within the deadline.", "en-us").seconds > 0.5
    engine.hang_s = 3.0
    start = time.monotonic()
    with pytest.raises(EngineError, match=r"longer than its deadline of 0\.5s"):
        engine.synthesize("This call hangs.", "en-us")
    assert time.monotonic() - start < 1.5
    engine.hang_s = -1  # an engine running out of memory is an engine failure the chain understands
    with pytest.raises(EngineError, match="MemoryError: out of memory"):
        engine.synthesize("Out of memory.", "en-us")


def test_deadlines_per_engine_from_settings():
    settings = Settings(engine_deadlines={"piper": "30"}, engine_deadline_s=45, external_timeout_s=20,
                        external_retries=2, engines=("espeak",))
    assert settings.deadline_for("piper") == 30 and settings.deadline_for("espeak") == 45
    assert settings.deadline_for("external") == 70  # three attempts of 20 s and backoff fit inside


def test_configured_fallback_chain_is_tried_in_order(tmp_path):
    """VOICE_FALLBACKS: the voice, then its configured fallbacks in order (unknown ids left out)."""
    from runtime.speech.engines import EngineError
    from runtime.speech.engines.espeak import EspeakEngine

    class NoEnglishUS(EspeakEngine):
        def _synthesize(self, text, voice, speed):
            if voice in ("en-us", "de"):
                raise EngineError(f"{voice} is broken for this test")
            return super()._synthesize(text, voice, speed)

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us",
                        voice_fallbacks={"espeak:en-us": "espeak:de|piper:gone|espeak:en-gb-x-rp"})
    engine = NoEnglishUS()
    catalog = VoiceCatalog({"espeak": engine}, settings)
    assert [v.id for v in catalog.chain(catalog.default)] == ["espeak:en-us", "espeak:de", "espeak:en-gb-x-rp"]
    assert [v.id for v in catalog.chain(catalog.resolve("espeak:fr-fr"))] == ["espeak:fr-fr"]  # nothing else to try
    synth = Synthesizer({"espeak": engine}, catalog, AudioCache(tmp_path / "cache"), Liveness(5), lambda _: None)
    synth.worker_id = "test:1:abc"
    try:
        job = make_job(catalog, text="Spoken by the third voice of the chain.")
        synth.run(job.id)
        job = Job.get_by_id(job.id)
        assert job.status == "succeeded" and job.engine == "espeak" and job.fallback is True
        entry = CacheEntry.get(CacheEntry.key == job.audio_key)
        assert entry.voice == "espeak:en-gb-x-rp"
    finally:
        db.close()


def test_a_job_keeps_its_next_sentence_queued_while_it_stores_the_last(tmp_path):
    """So an engine with worker processes never idles on the job's bookkeeping: sentence n+1 is asked for
    before sentence n is waited for and stored. A sentence said twice is synthesised once, and a failure
    cancels what was asked for ahead."""
    from runtime.speech.engines import EngineError
    from runtime.speech.engines.base import Pending
    from runtime.speech.engines.espeak import EspeakEngine

    events: list[str] = []

    class Recording(EspeakEngine):
        fail_on = ""

        def submit(self, text, voice, speed=1.0, queue_behind=False):
            events.append(f"ask {text}" + (" (behind)" if queue_behind else ""))

            def result():
                events.append(f"wait {text}")
                if text == self.fail_on:
                    raise EngineError("broken sentence")
                return self.synthesize(text, voice, speed)

            return Pending(result, cancel=lambda: events.append(f"cancel {text}"))

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us")
    engine = Recording()
    catalog = VoiceCatalog({"espeak": engine}, settings)
    published: list[str] = []
    synth = Synthesizer({"espeak": engine}, catalog, AudioCache(tmp_path / "cache"), Liveness(5), published.append)
    synth.worker_id = "test:1:abc"
    try:
        job = make_job(catalog, "Alpha comes first. Bravo is second. Alpha comes first. Charlie ends it.")
        synth.run(job.id)
        job = Job.get_by_id(job.id)
        assert job.status == "succeeded", job.error
        assert (job.chunks_total, job.chunks_done, job.chunks_cached) == (4, 4, 1)
        # only the second sentence, asked while the first (the one a listener waits for) is synthesised, may
        # wait behind it (on the engine's idle lane) rather than run beside it
        assert events == ["ask Alpha comes first.", "ask Bravo is second. (behind)", "wait Alpha comes first.",
                          "ask Charlie ends it.", "wait Bravo is second.", "wait Charlie ends it."]
        assert published.count(job.id) == 5  # one per sentence (streams wake up), one when it ends
        assert CacheEntry.select().count() == 4  # three sentences and the answer, indexed

        events.clear()
        engine.fail_on = "Echo breaks."
        failed = make_job(catalog, "Delta is fine. Echo breaks. Foxtrot never comes.")
        synth.run(failed.id)
        assert Job.get_by_id(failed.id).status == "failed"
        assert events == ["ask Delta is fine.", "ask Echo breaks. (behind)", "wait Delta is fine.",
                          "ask Foxtrot never comes.", "wait Echo breaks.", "cancel Foxtrot never comes."]
    finally:
        db.close()


def test_a_disk_error_is_not_the_engines_fault_the_job_is_retried(tmp_path):
    """The cache cannot be written (a file stands where a directory must go): the circuit neither counts it
    nor moves on to the fallback; the job goes back to the queue and the error reaches Dramatiq, which retries.
    Once the disk is fine, the retry succeeds."""
    from runtime.speech.breakers import EngineBreakers

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    settings = Settings(data_dir=tmp_path, engines=("espeak",), default_voice="espeak:en-us")
    engines = build_engines(settings)
    catalog = VoiceCatalog(engines, settings)
    breakers = EngineBreakers(["espeak"], fail_max=1, cooldown_s=60)
    cache = AudioCache(tmp_path / "cache")
    synth = Synthesizer(engines, catalog, cache, Liveness(5), lambda _: None, breakers)
    synth.worker_id = "test:1:abc"
    try:
        # two sentences: each is written to the cache inside the engine's guarded call
        job = make_job(catalog, text="The disk says no this time. It will say yes later.")
        req = from_synthesize({"text": job.text, "voice": "espeak:en-us"}, catalog, 4096)
        whole = req.key_for(req.voice, engines["espeak"].identity())
        # every shard directory's place but the whole answer's is taken by a file: sentence writes fail
        blockers = [cache.root / f"{n:02x}" for n in range(256) if f"{n:02x}" != whole[:2]]
        for blocker in blockers:
            blocker.write_text("not a directory")
        with pytest.raises(OSError):
            synth.run(job.id)  # raised on to Dramatiq, which retries the message
        again = Job.get_by_id(job.id)
        assert again.status == "queued" and again.worker_id is None and again.error is None
        assert breakers.status("espeak") == {"state": "closed", "consecutive_failures": 0, "cooldown_s": 60}
        for blocker in blockers:
            blocker.unlink()
        synth.run(job.id)
        done = Job.get_by_id(job.id)
        assert done.status == "succeeded" and done.attempts == 2 and done.fallback is False
    finally:
        db.close()
