"""Back-pressure and priorities on a real service with one synthesis thread."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support import ServiceProcess, poll_job

pytestmark = pytest.mark.integration

LONG = " ".join(f"Long passage sentence {word} keeps the single worker busy for a while."
                for word in ("one", "two", "three", "four", "five", "six", "seven", "eight"))


def wait_running(c, job, timeout=30.0):
    deadline = time.monotonic() + timeout
    while c.get(job["status_url"]).json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_full_queue_answers_429_with_retry_after_and_loses_nothing(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"WORKER_THREADS": "1", "QUEUE_MAX_DEPTH": "2"}).start()
    try:
        proc.wait_ready()
        with httpx.Client(base_url=proc.url, timeout=120) as c:
            cached = c.post("/api/synthesize?wait=30", json={"text": "Already cached before the rush."}).json()
            running = c.post("/api/synthesize", json={"text": LONG + " Running."}).json()
            wait_running(c, running)
            queued = [c.post("/api/synthesize", json={"text": LONG + f" Queued {n}."}).json() for n in ("a", "b")]
            assert all(j["status"] == "queued" for j in queued)

            refused = c.post("/api/synthesize", json={"text": "One too many."})
            assert refused.status_code == 429, refused.text
            assert refused.json()["error"]["code"] == "queue_full"
            assert 1 <= int(refused.headers["retry-after"]) <= 3600
            refused_openai = c.post("/v1/audio/speech", json={"input": "Also one too many."})
            assert refused_openai.status_code == 429

            # Still served while full: cache hits, and requests identical to a waiting job (they share it).
            assert c.post("/api/synthesize", json={"text": "Already cached before the rush."}).status_code == 200
            same = c.post("/api/synthesize", json={"text": LONG + " Queued a."}).json()
            assert same["id"] == queued[0]["id"]

            with proc.db() as conn:
                assert conn.execute("SELECT COUNT(*) FROM jobs WHERE text LIKE '%too many%'").fetchone()[0] == 0
            for job in (running, *queued):
                assert poll_job(c, job["status_url"], timeout=180)["status"] == "succeeded"
            assert c.get(cached["status_url"]).json()["status"] == "succeeded"
            # Drained: new work is accepted again.
            assert c.post("/api/synthesize", json={"text": "Room again."}).status_code in (200, 202)
    finally:
        proc.stop()


def test_short_requests_overtake_waiting_long_jobs(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"WORKER_THREADS": "1"}).start()
    try:
        proc.wait_ready()
        with httpx.Client(base_url=proc.url, timeout=120) as c:
            first = c.post("/api/synthesize", json={"text": LONG + " First."}).json()
            wait_running(c, first)
            long_jobs = [c.post("/api/synthesize", json={"text": LONG + f" Then {n}."}).json() for n in ("b", "c")]
            short = c.post("/api/synthesize", json={"text": "A short question?"}).json()
            done_short = poll_job(c, short["status_url"], timeout=120)
            done_long = [poll_job(c, j["status_url"], timeout=180) for j in long_jobs]
            assert done_short["status"] == "succeeded"
            # The short job ran right after the one already running, before both waiting long jobs.
            assert all(done_short["timings"]["finished_at"] <= j["timings"]["started_at"] for j in done_long), (
                done_short["timings"], [j["timings"] for j in done_long])
    finally:
        proc.stop()


def test_one_caller_cannot_fill_the_queue_for_everyone(tmp_path):
    """QUEUE_MAX_PER_CALLER: the caller is the client address until API keys exist (runtime.callers)."""
    env = {"WORKER_THREADS": "1", "QUEUE_MAX_DEPTH": "10", "QUEUE_MAX_PER_CALLER": "2"}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    other = httpx.HTTPTransport(local_address="127.0.0.2")  # a second caller: another loopback source address
    try:
        proc.wait_ready()
        with httpx.Client(base_url=proc.url, timeout=120) as a, \
                httpx.Client(base_url=proc.url, timeout=120, transport=other) as b:
            running = a.post("/api/synthesize", json={"text": LONG + " Busy."}).json()
            wait_running(a, running)
            mine = [a.post("/api/synthesize", json={"text": LONG + f" Mine {n}."}).json() for n in ("a", "b")]
            assert all(j["status"] == "queued" for j in mine)

            refused = a.post("/api/synthesize", json={"text": LONG + " Mine c."})
            assert refused.status_code == 429 and refused.json()["error"]["code"] == "caller_queue_full"
            assert 1 <= int(refused.headers["retry-after"]) <= 3600
            assert a.post("/v1/audio/speech", json={"input": "Me again, at once."}).status_code == 429
            # the same request as one of mine shares that job: not refused
            assert a.post("/api/synthesize", json={"text": LONG + " Mine a."}).json()["id"] == mine[0]["id"]

            theirs = b.post("/api/synthesize", json={"text": "Another caller still gets in."})
            assert theirs.status_code == 202, theirs.text
            with proc.db() as conn:
                callers = dict(conn.execute("SELECT caller, COUNT(*) FROM jobs GROUP BY caller").fetchall())
            assert callers == {"ip:127.0.0.1": 3, "ip:127.0.0.2": 1}, callers
            for job in (running, *mine, theirs.json()):
                assert poll_job(a, job["status_url"], timeout=180)["status"] == "succeeded"
            assert a.post("/api/synthesize", json={"text": LONG + " Mine c."}).status_code in (200, 202)
    finally:
        proc.stop()
