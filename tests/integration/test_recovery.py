"""The jobs table is the truth: jobs queued or running when the process dies complete after a restart,
and finished jobs are never done twice."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.support import ServiceProcess, assert_speech, decode_wav

pytestmark = pytest.mark.integration

# Distinct sentences: a repeated one is synthesised once (the sentence cache), and the "long" job would
# finish in a blink, racing the kill.
LONG = " ".join(f"Passage {word} keeps the single worker thread busy with sentence number {n} of twelve."
                for n, word in enumerate(("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor",
                                          "iris", "juniper", "kestrel", "lagoon"), 1))


def status(c, job) -> dict:
    return c.get(job["status_url"]).json()


def test_sigkill_with_running_and_queued_jobs_then_restart(tmp_path):
    data = tmp_path / "data"
    env = {"WORKER_THREADS": "1"}
    first = ServiceProcess(data, env=env).start().wait_ready()
    try:
        with httpx.Client(base_url=first.url, timeout=60) as c:
            done = c.post("/api/synthesize?wait=30", json={"text": "Finished before the crash."}).json()
            assert done["status"] == "succeeded"
            running = c.post("/api/synthesize", json={"text": LONG}).json()
            queued = c.post("/api/synthesize", json={"text": "Short text waiting in line.", "format": "mp3"}).json()
            deadline = time.monotonic() + 30
            while status(c, running)["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            assert status(c, queued)["status"] == "queued"
    finally:
        first.stop(signal.SIGKILL)  # also when an assertion above fails: no process outlives its test

    with first.db() as conn:
        states = dict(conn.execute("SELECT id, status FROM jobs").fetchall())
    assert states[running["id"]] == "running" and states[queued["id"]] == "queued"

    second = ServiceProcess(data, env=env, port=first.port).start().wait_ready()
    try:
        with httpx.Client(base_url=second.url, timeout=60) as c:
            deadline = time.monotonic() + 120
            while {status(c, j)["status"] for j in (running, queued)} != {"succeeded"}:
                assert time.monotonic() < deadline, [status(c, j) for j in (running, queued)]
                time.sleep(0.1)
            r, q = status(c, running), status(c, queued)
            assert r["attempts"] == 2  # interrupted once, completed by the new process
            assert q["attempts"] == 1
            assert_speech(decode_wav(c.get(r["audio_url"]).content), LONG, sample_rate=22050)
            assert c.get(q["audio_url"]).headers["content-type"] == "audio/mpeg"
            assert status(c, done)["attempts"] == 1
    finally:
        second.stop()

    # A clean restart re-does nothing: every job keeps its attempt count.
    third = ServiceProcess(data, env=env, port=first.port).start().wait_ready()
    try:
        time.sleep(1.0)
        with third.db() as conn:
            rows = conn.execute("SELECT status, attempts FROM jobs ORDER BY created_at").fetchall()
        assert [(row["status"], row["attempts"]) for row in rows] == [
            ("succeeded", 1), ("succeeded", 2), ("succeeded", 1)]
        assert "recovered" not in third.log()
    finally:
        third.stop()


def test_no_partial_cache_files_survive_a_crash(tmp_path):
    data = tmp_path / "data"
    cache = data / "audio-cache" / "ab"
    cache.mkdir(parents=True)
    (cache / ".tmp-leftover").write_bytes(b"half a file")
    proc = ServiceProcess(data).start().wait_ready()
    try:
        assert not (cache / ".tmp-leftover").exists()
        assert "removed 1 partial cache file" in proc.log()
    finally:
        proc.stop()


def test_a_restart_with_a_hundred_queued_jobs_completes_all_of_them(tmp_path):
    data = tmp_path / "data"
    env = {"WORKER_THREADS": "1", "ENGINES": "espeak", "ENGINE_PROCESSES": "espeak=1"}
    first = ServiceProcess(data, env=env).start().wait_ready()
    try:
        with httpx.Client(base_url=first.url, timeout=60) as c:
            for n in range(100):
                text = " ".join(f"Job {n} says sentence {m} about {word} in full." for m, word in
                                enumerate(("rivers", "lanterns", "orchards", "harbors", "meadows", "kettles")))
                answer = c.post("/api/synthesize", json={"text": text, "voice": "espeak:en-us"})
                assert answer.status_code == 202, answer.text
    finally:
        first.stop(signal.SIGKILL)
    with first.db() as conn:
        waiting = conn.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
    assert waiting >= 50, waiting  # most of them never started before the kill
    second = ServiceProcess(data, env=env, port=first.port).start().wait_ready()
    try:
        deadline = time.monotonic() + 240
        while True:
            with second.db() as conn:
                states = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
            if states.get("succeeded", 0) == 100:
                break
            assert time.monotonic() < deadline and not states.get("failed"), states
            time.sleep(0.5)
        assert "recovered" in second.log()
    finally:
        second.stop()
