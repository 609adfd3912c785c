"""Graceful shutdown with a real process and a real signal: SIGTERM lets the synthesis in progress finish,
leaves queued jobs queued (they run after the restart), releases the scheduler lease, and ends cleanly."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from tests.support import ServiceProcess

pytestmark = pytest.mark.integration

WORDS = ("amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper")


def test_sigterm_finishes_the_job_in_progress_and_keeps_the_queue(tmp_path):
    log_file = tmp_path / "data" / "logs" / "ef.log"
    env = {"WORKER_THREADS": "1", "ENGINES": "espeak,piper", "DEFAULT_VOICE": "piper:en_US-joe-medium",
           "LOG_FILE": str(log_file)}
    proc = ServiceProcess(tmp_path / "data", env=env).start().wait_ready()
    try:
        long_text = " ".join(f"The {w} sentence is one of ten distinct ones, spoken at an easy pace." for w in WORDS)
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            running = c.post("/api/synthesize", json={"text": long_text}).json()
            deadline = time.monotonic() + 30
            while c.get(running["status_url"]).json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            # queued once the long job runs: sent together, the short one could go first (short jobs have
            # priority) and be done before the signal
            queued = c.post("/api/synthesize", json={"text": "I wait in line until the restart."}).json()
        with proc.db() as db:
            assert db.execute("SELECT COUNT(*) FROM scheduler_lease").fetchone()[0] == 1
    except BaseException:
        proc.stop()  # no process outlives a failed test
        raise
    # uvicorn re-raises SIGTERM once it has shut down cleanly, so a supervisor sees the signal
    assert proc.stop(signal.SIGTERM, timeout=120) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in proc.log() and "released the lease" in proc.log()
    # LOG_FILE: the same lines as JSON, uvicorn's included
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(line["message"] == "Application shutdown complete." for line in lines)
    with proc.db() as db:
        states = dict(db.execute("SELECT id, status FROM jobs").fetchall())
        assert db.execute("SELECT COUNT(*) FROM scheduler_lease").fetchone()[0] == 0  # released
    assert states[running["id"]] == "succeeded"  # finished, not abandoned
    assert states[queued["id"]] == "queued"  # kept for the next start
    restarted = ServiceProcess(tmp_path / "data", env=env, port=proc.port).start().wait_ready()
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as c:
            deadline = time.monotonic() + 60
            while c.get(queued["status_url"]).json()["status"] != "succeeded":
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        restarted.stop()
