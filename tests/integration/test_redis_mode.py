"""Scaled-out mode for real: redis-server, a separate worker process, a web process that only serves."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.support import ServiceProcess, assert_speech, decode_wav, decode_with_ffmpeg, poll_job
from tests.test_wyoming import Answer, synthesize

pytestmark = pytest.mark.integration




def test_synthesis_goes_through_a_separate_worker(redis_server, tmp_path):
    data = tmp_path / "data"
    env = {"REDIS_URL": redis_server.url, "WORKER_HEARTBEAT_S": "0.5", "WORKER_DEAD_AFTER_S": "3"}
    worker = ServiceProcess(data, "worker", env=env).start()
    web = ServiceProcess(data, "serve", env=env)
    try:
        worker.wait_log("worker ready", timeout=90)
        web.start().wait_ready(timeout=60)
        with httpx.Client(base_url=web.url, timeout=120) as c:
            health = c.get("/health").json()
            assert health["checks"]["worker"] == {"ok": True, "mode": "redis", "workers": 1}
            assert health["checks"]["queue"]["broker"] == "redis"

            text = "This sentence travelled through Redis to another process."
            resp = c.post("/v1/audio/speech", json={"input": text, "voice": "alloy", "response_format": "wav"})
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-tts-engine"] == "piper"
            assert_speech(decode_wav(resp.content), text, sample_rate=22050)
            job = c.get(f"/api/jobs/{resp.headers['x-job-id']}").json()
            assert job["worker_id"].split(":")[1] == str(worker.proc.pid)
            assert "engine piper loaded" not in web.log()  # the web process never loads a model
            # the worker counted the synthesis; the web's /metrics adds every process up (multiprocess mode)
            exposition = c.get("/metrics").text
            assert 'ef_syntheses_total{engine="piper",outcome="ok"} 1.0' in exposition
            assert 'ef_http_requests_total{function="openai_speech",status="200",version="1"} 1.0' in exposition
            # the worker's canary results and the shared (Redis) circuit state, as the web reports them
            tts = c.get("/health/tts").json()
            assert tts["ok"] and tts["engines"]["piper"]["canary"][0]["ok"]
            assert tts["engines"]["piper"]["canary"][0]["worker_id"].split(":")[1] == str(worker.proc.pid)
            assert tts["engines"]["piper"]["circuit"]["state"] == "closed"

            # Streaming: the web sends the first sentence's audio while the worker still synthesises the rest
            long_text = " ".join(f"Streamed sentence {n} goes from the worker through Redis to the caller."
                                 for n in ("one", "two", "three", "four", "five", "six", "seven", "eight"))
            with c.stream("POST", "/v1/audio/speech", json={"input": long_text, "voice": "alloy",
                                                            "response_format": "mp3"}) as streamed:
                assert streamed.status_code == 200 and streamed.headers["transfer-encoding"] == "chunked"
                body = streamed.iter_bytes()
                first = next(body)
                at_first = c.get(f"/api/jobs/{streamed.headers['x-job-id']}").json()
                audio = first + b"".join(body)
            assert at_first["status"] == "running", at_first
            assert at_first["progress"]["chunks_done"] < at_first["progress"]["chunks_total"] == 8, at_first
            assert_speech(decode_with_ffmpeg(audio), long_text, sample_rate=22050)

            # Wyoming: the web process listens, the worker synthesises
            said = "Home Assistant asked the web process. The worker spoke it through Redis."
            answer = asyncio.run(synthesize(web.wyoming_port, said))
            assert isinstance(answer, Answer), answer
            assert_speech(answer.audio, said, sample_rate=22050)
            with web.db() as db:
                row = db.execute("SELECT worker_id FROM jobs WHERE text = ?", (said,)).fetchone()
            assert row["worker_id"].split(":")[1] == str(worker.proc.pid)

            # Worker gone: jobs are accepted and kept; a new worker picks them up. Nothing is lost.
            worker.stop()
            assert c.get("/health").status_code == 503
            text2 = "Queued while no worker was running."
            queued = c.post("/api/synthesize", json={"text": text2, "format": "wav"}).json()
            time.sleep(1.0)
            assert c.get(queued["status_url"]).json()["status"] == "queued"
            worker = ServiceProcess(data, "worker", env=env).start()
            job = poll_job(c, queued["status_url"])
            assert job["status"] == "succeeded", job
            assert job["worker_id"].split(":")[1] == str(worker.proc.pid)
            assert_speech(decode_wav(c.get(job["audio_url"]).content), text2, sample_rate=22050)
    finally:
        web.stop()
        worker.stop()


def test_worker_killed_mid_job_is_recovered_by_the_next_worker(redis_server, tmp_path):
    data = tmp_path / "data"
    env = {"REDIS_URL": redis_server.url, "WORKER_THREADS": "1"}
    worker = ServiceProcess(data, "worker", env=env).start()
    web = ServiceProcess(data, "serve", env=env)
    try:
        worker.wait_log("worker ready", timeout=90)
        web.start().wait_ready(timeout=60)
        # Distinct sentences (a repeated one is synthesised once: the sentence cache would make this trivial)
        text = " ".join(f"Sentence {n} of sixteen tells of the {word} by the water, slowly and in full."
                        for n, word in enumerate(("heron", "willow", "lantern", "meadow", "copper", "thistle",
                                                  "harbor", "falcon", "orchard", "pebble", "saffron", "glacier",
                                                  "marble", "juniper", "compass", "ember"), 1))
        with httpx.Client(base_url=web.url, timeout=120) as c:
            job = c.post("/api/synthesize", json={"text": text, "format": "wav"}).json()
            deadline = time.monotonic() + 60
            while (state := c.get(job["status_url"]).json())["progress"]["chunks_done"] < 2:
                assert time.monotonic() < deadline, state
                time.sleep(0.02)
            worker.kill()  # kill -9 in the middle of the text
            at_kill = c.get(job["status_url"]).json()
            assert at_kill["status"] == "running" and 2 <= at_kill["progress"]["chunks_done"] < 16, at_kill
            worker = ServiceProcess(data, "worker", env=env).start()
            done = poll_job(c, job["status_url"])
            assert done["status"] == "succeeded" and done["attempts"] == 2, done
            # the sentences spoken before the kill were kept (sentence cache) and reused, none lost or redone
            assert done["progress"]["chunks_total"] == 16
            assert done["progress"]["chunks_cached"] >= at_kill["progress"]["chunks_done"], done
            assert_speech(decode_wav(c.get(done["audio_url"]).content), text, sample_rate=22050)
    finally:
        web.stop()
        worker.stop()


def test_rate_limits_are_shared_by_every_web_process(redis_server, tmp_path):
    """Two web processes count one caller's requests together, in Redis."""
    env = {"REDIS_URL": redis_server.url, "ENGINES": "espeak", "RATE_LIMITS": "voices=4/minute"}
    webs = [ServiceProcess(tmp_path / "data", "serve", env=env) for _ in range(2)]
    try:
        for web in webs:
            web.start().wait_ready(timeout=60, path="/healthz")
        codes = [httpx.get(webs[n % 2].url + "/api/voices", timeout=30).status_code for n in range(5)]
        assert codes == [200, 200, 200, 200, 429]
        other_function = httpx.get(webs[0].url + "/v1/models", timeout=30)
        assert other_function.status_code == 200 and "ratelimit-limit" not in other_function.headers
    finally:
        for web in webs:
            web.stop()
