"""Engines in worker processes (``ENGINE_ISOLATION=process``, the default): a synthesis given up at its
deadline is really ended with its process, a crash in native code costs one synthesis, and the processes
synthesise in parallel. The engine is real eSpeak NG made to hang or crash in native code on cue
(``tests/isolation_engines.py``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runtime.speech.engines import EngineError
from runtime.speech.engines.isolated import ProcessIsolated
from tests.isolation_engines import MisbehavingEspeak, assert_spoken_in_parallel, spans


def _pids(record_dir: Path) -> set[int]:
    return {int(p.name) for p in record_dir.iterdir()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive either
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture()
def isolated(tmp_path):
    engines: list[ProcessIsolated] = []

    def make(processes: int = 1, deadline_s: float = 2.0) -> ProcessIsolated:
        inner = MisbehavingEspeak(str(tmp_path))
        inner.deadline_s = deadline_s
        engine = ProcessIsolated(inner, "tests.isolation_engines:misbehaving_espeak", (str(tmp_path),), processes)
        engine.load()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def test_a_call_hung_in_native_code_is_ended_with_its_process(isolated, tmp_path):
    engine = isolated(processes=1, deadline_s=1.0)
    assert engine.synthesize("Before the hang.", "en-us").seconds > 0.5
    start = time.monotonic()
    with pytest.raises(EngineError, match=r"longer than its deadline of 1s; its worker process was ended"):
        engine.synthesize("hang", "en-us")
    assert time.monotonic() - start < 5
    hung = next(int(p.name) for p in tmp_path.iterdir() if "start hang" in p.read_text())
    deadline = time.monotonic() + 10
    while _alive(hung) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(hung), "the process stuck in native code is still running"
    # eSpeak NG's library lock went with the process: the next call speaks (in a fresh process)
    after = engine.synthesize("After the hang, eSpeak speaks again.", "en-us")
    assert after.seconds > 1.0 and after.peak() > 3000
    assert len(_pids(tmp_path)) == 2


def test_in_a_thread_a_hung_call_keeps_the_lock_and_blocks_the_next_one():
    """Why: the same hang with thread isolation (the in-process engine with its deadline thread) leaves the
    abandoned thread holding eSpeak's global lock, and the next call fails too."""
    engine = MisbehavingEspeak(str(Path("/nonexistent")))
    engine._record = lambda line: None
    engine.deadline_s = 0.5
    engine.load()
    with pytest.raises(EngineError, match="deadline"):
        engine.synthesize("hang 3", "en-us")
    with pytest.raises(EngineError, match="deadline"):
        engine.synthesize("An innocent sentence.", "en-us")
    from runtime.speech.engines.espeak import _Library

    assert _Library.lock.acquire(timeout=10)  # (the hang ends after 3 s; leave the lock free for others)
    _Library.lock.release()


def test_a_crash_in_native_code_fails_one_synthesis_and_the_next_one_works(isolated):
    engine = isolated(processes=1)
    with pytest.raises(EngineError, match=r"worker process died \(exit code -6\)"):
        engine.synthesize("crash", "en-us")
    assert engine.synthesize("Still here afterwards.", "en-us").peak() > 3000


def test_worker_processes_synthesise_in_parallel(isolated, tmp_path):
    engine = isolated(processes=2)
    assert_spoken_in_parallel(engine, ["slow first sentence to speak.", "slow second sentence to speak."], "en-us",
                              tmp_path)


def test_an_engine_that_cannot_load_is_reported_once_not_restarted_forever(tmp_path):
    inner = MisbehavingEspeak(str(tmp_path))
    engine = ProcessIsolated(inner, "tests.isolation_engines:unloadable", ("no model file here",), processes=1)
    try:
        with pytest.raises(EngineError, match="could not be loaded in its worker process: RuntimeError: no model"):
            engine.load()
        assert not engine.loaded
        with pytest.raises(EngineError, match="no model file here"):
            engine.synthesize("Hello.", "en-us")
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_child(p)]
        assert len(children) == 1, children
    finally:
        engine.close()


def _is_child(proc: Path, parent: int | None = None) -> bool:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == (parent or os.getpid()) and b"spawn_main" in (
        proc / "cmdline").read_bytes()  # an engine worker (not multiprocessing's resource tracker)


def test_a_job_given_up_by_its_time_limit_ends_the_engine_process(isolated, tmp_path):
    """Dramatiq's time limit raises an exception in the synthesis thread while it waits for the engine
    process; the waiting thread wakes to it, and the process stuck in native code is ended with it."""
    import ctypes
    import threading

    from dramatiq.middleware.time_limit import TimeLimitExceeded

    engine = isolated(processes=1, deadline_s=0)  # no deadline of its own: only the job's limit applies
    raised: list[BaseException] = []

    def job() -> None:
        try:
            engine.synthesize("hang", "en-us")
        except BaseException as exc:  # the time limit's exception, as in a Dramatiq worker thread
            raised.append(exc)

    worker = threading.Thread(target=job)
    worker.start()
    deadline = time.monotonic() + 20
    while not any("start hang" in p.read_text() for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    hung = next(int(p.name) for p in tmp_path.iterdir() if "start hang" in p.read_text())
    # what dramatiq's TimeLimit middleware does to a worker thread over its limit
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(TimeLimitExceeded))
    worker.join(10)
    assert not worker.is_alive() and isinstance(raised[0], TimeLimitExceeded)
    while _alive(hung) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(hung), "the engine process outlived the job that gave up on it"
    assert engine.synthesize("The next job speaks.", "en-us").peak() > 3000


def test_the_service_runs_its_engines_in_worker_processes(client, service):
    """The default service: Piper and eSpeak NG each in one process per worker thread, and Piper's idle
    lane in one more (on a machine of several cores), children of the service process, as /health/tts
    says."""
    from runtime.settings import usable_cores

    engines = client.get("/health/tts").json()["engines"]
    expected = 0
    for name in ("piper", "espeak"):
        isolation = engines[name]["isolation"]
        assert isolation["mode"] == "process" and isolation["processes"] >= 2, isolation
        idle = min(4, usable_cores()) if name == "piper" and usable_cores() > 1 else 0
        assert isolation["idle_lane_threads"] == idle, isolation
        expected += isolation["processes"] + (1 if idle else 0)
    children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_child(p, service.proc.pid)]
    assert len(children) == expected, children
    if engines["piper"]["isolation"]["idle_lane_threads"]:  # a lone cache miss is spoken on the idle lane
        def idle_count() -> float:
            for line in client.get("/metrics").text.splitlines():
                if line.startswith('ef_engine_lane_syntheses_total{engine="piper",lane="idle"}'):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        before = idle_count()
        said = client.post("/v1/audio/speech", json={"input": f"A lone request, number {time.time_ns()}.",
                                                     "voice": "piper:en_US-joe-medium", "response_format": "wav"})
        assert said.status_code == 200 and said.headers["x-cache"] == "miss"
        assert idle_count() == before + 1


def _lanes(shared: Path, idle: Path) -> dict[str, str]:
    """text -> the lane whose process spoke it ("idle" or "shared"), from the two record directories."""
    lanes = {}
    for lane, directory in (("shared", shared), ("idle", idle)):
        for log in directory.iterdir():
            for line in log.read_text().splitlines():
                _, what, text = line.split(" ", 2)
                if what == "start":
                    lanes[text] = lane
    return lanes


def test_the_idle_lane_takes_a_lone_synthesis_and_the_shared_processes_the_rest(tmp_path):
    """A synthesis that starts while nothing else is synthesised runs on the idle lane (its own process,
    several threads with Piper); one that starts beside it, on the shared processes; a job's second
    sentence, asked while its first runs alone on the idle lane, waits behind it there. Another engine's
    synthesis in flight counts too (they share the cores). A crash on the idle lane gives its place back."""
    shared, idle, other = (tmp_path / name for name in ("shared", "idle", "other"))
    for directory in (shared, idle, other):
        directory.mkdir()
    engine = ProcessIsolated(MisbehavingEspeak(str(shared)), "tests.isolation_engines:misbehaving_espeak",
                             (str(shared),), processes=2, idle_args=(str(idle),), idle_threads=2)
    second = ProcessIsolated(MisbehavingEspeak(str(other)), "tests.isolation_engines:misbehaving_espeak",
                             (str(other),), processes=1)
    try:
        engine.load()
        second.load()
        assert engine.synthesize("Alone at first.", "en-us").peak() > 3000
        first = engine.submit("slow first of a job.", "en-us")
        behind = engine.submit("Its second sentence.", "en-us", queue_behind=True)
        beside = engine.submit("Another job beside it.", "en-us")
        late = engine.submit("Late second sentence.", "en-us", queue_behind=True)  # the shared lane is busy
        for pending in (first, behind, beside, late):
            assert pending.result().seconds > 0.5
        assert engine.synthesize("Alone again.", "en-us").peak() > 3000
        busy = second.submit("slow other engine.", "en-us")
        time.sleep(0.2)
        assert engine.synthesize("Beside the other engine.", "en-us").peak() > 3000
        busy.result()
        with pytest.raises(EngineError, match="worker process died"):
            engine.synthesize("crash on the idle lane", "en-us")
        assert engine.synthesize("Alone after that failure.", "en-us").peak() > 3000
        lanes = _lanes(shared, idle)
        assert lanes == {"Alone at first.": "idle", "slow first of a job.": "idle", "Its second sentence.": "idle",
                         "Another job beside it.": "shared", "Late second sentence.": "shared",
                         "Alone again.": "idle", "Beside the other engine.": "shared",
                         "crash on the idle lane": "idle", "Alone after that failure.": "idle"}, lanes
        found = spans(idle, ["slow first of a job.", "Its second sentence."])
        assert found["slow first of a job."][2] <= found["Its second sentence."][1], "behind means after"
        assert engine.idle_threads == 2 and second.idle_threads == 0
    finally:
        engine.close()
        second.close()
