"""The external HTTP engine against a small real HTTP server (tests/fake_upstream.py): an OpenAI-compatible
upstream and a Coqui tts-server, and each way an upstream fails — 500, garbage, silence, hanging past the
timeout — ending in a fallback answer, never a hung request and never a cached bad file."""

from __future__ import annotations

import time
import uuid

import httpx
import numpy as np
import pytest

from tests.fake_upstream import RATE, FakeUpstream
from tests.support import ServiceProcess, assert_speech, decode_wav, poll_job, running_service


@pytest.fixture(scope="module")
def upstream():
    server = FakeUpstream().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def svc(upstream, tmp_path_factory):
    env = {"ENGINES": "external,espeak", "EXTERNAL_URL": upstream.url + "/v1", "DEFAULT_VOICE": "external:default",
           "EXTERNAL_VOICES": "default=en-US,narrator=en-GB", "EXTERNAL_TIMEOUT_S": "1", "EXTERNAL_RETRIES": "2",
           "ENGINE_FAIL_MAX": "100"}
    with running_service(tmp_path_factory.mktemp("ext") / "data", env) as proc:
        yield proc


@pytest.fixture()
def client(svc, upstream):
    upstream.mode = "ok"
    upstream.fail_voice = ""
    upstream.requests.clear()
    with httpx.Client(base_url=svc.url, timeout=60) as c:
        yield c


def tone_share(samples: np.ndarray) -> float:
    """Share of the energy within 10 Hz of the fake upstream's 220 Hz tone."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / RATE)
    return float(spectrum[np.abs(freqs - 220) < 10].sum() / spectrum.sum())


def text() -> str:
    return f"The upstream speaks sentence {uuid.uuid4().hex[:4]} for us today."


def external_entries(svc) -> int:
    with svc.db() as conn:
        return conn.execute("SELECT COUNT(*) FROM cache_entries WHERE engine = 'external'").fetchone()[0]


def test_upstream_speaks_and_lists_its_voices(client, upstream):
    said = text()
    resp = client.post("/v1/audio/speech", json={"input": said, "voice": "external:narrator", "response_format": "wav"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-tts-engine"] == "external" and resp.headers["x-tts-fallback"] == "false"
    assert_speech(decode_wav(resp.content), said, sample_rate=RATE)
    assert upstream.last_json == {"model": "tts-1", "input": said, "voice": "narrator", "response_format": "wav",
                                  "speed": 1.0}
    voices = client.get("/api/voices?engine=external").json()["voices"]
    assert [(v["id"], v["language"]) for v in voices] == [("external:default", "en-US"),
                                                          ("external:narrator", "en-GB")]
    canary = client.get("/health/tts").json()["engines"]["external"]["canary"]
    assert canary and canary[0]["ok"] is True


@pytest.mark.parametrize("mode, attempts", [("500", 3), ("garbage", 1), ("silence", 1)])
def test_failing_upstream_falls_back_and_caches_nothing_bad(svc, client, upstream, mode, attempts):
    upstream.mode = mode
    before = external_entries(svc)
    said = text()
    resp = client.post("/v1/audio/speech", json={"input": said, "response_format": "wav"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-tts-engine"] == "espeak" and resp.headers["x-tts-fallback"] == "true"
    assert_speech(decode_wav(resp.content), said)
    assert len(upstream.requests) == attempts  # 5xx is retried (1 + EXTERNAL_RETRIES); a bad answer is not
    assert external_entries(svc) == before


def test_upstream_hanging_past_its_timeout_ends_in_a_fallback_not_a_hang(svc, client, upstream):
    upstream.mode = "slow"
    upstream.slow_s = 3.0
    start = time.monotonic()
    resp = client.post("/v1/audio/speech", json={"input": text(), "response_format": "wav"})
    elapsed = time.monotonic() - start
    assert resp.status_code == 200 and resp.headers["x-tts-engine"] == "espeak"
    assert len(upstream.requests) == 3 and elapsed < 15, elapsed  # 3 attempts of 1 s plus short backoff


def test_a_passing_hiccup_is_retried_and_the_upstream_answers(client, upstream):
    upstream.mode = "fail_then_ok"
    upstream.fail_count = 1
    said = text()
    resp = client.post("/v1/audio/speech", json={"input": said, "response_format": "wav"})
    assert resp.status_code == 200 and resp.headers["x-tts-engine"] == "external"
    assert len(upstream.requests) == 2
    assert_speech(decode_wav(resp.content), said, sample_rate=RATE)


def test_coqui_tts_server_api(upstream, tmp_path):
    env = {"ENGINES": "external,espeak", "EXTERNAL_API": "coqui", "EXTERNAL_URL": upstream.url,
           "DEFAULT_VOICE": "external:default"}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    upstream.mode = "ok"
    try:
        proc.wait_ready()
        upstream.requests.clear()
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            said = text()
            normal = c.post("/v1/audio/speech", json={"input": said, "response_format": "wav"})
            assert normal.status_code == 200 and normal.headers["x-tts-engine"] == "external"
            assert upstream.requests[0]["method"] == "GET" and upstream.requests[0]["path"].startswith("/api/tts?")
            assert upstream.requests[0]["text"] == said
            # Coqui's server has no speed: the service time-stretches
            fast = c.post("/v1/audio/speech", json={"input": said, "response_format": "wav", "speed": 2.0})
            ratio = decode_wav(normal.content).seconds / decode_wav(fast.content).seconds
            assert 1.8 < ratio < 2.2, ratio
    finally:
        proc.stop()


def test_engine_failing_mid_text_falls_back_and_the_stream_goes_on(svc, client, upstream):
    """Sentences 1-2 come from the upstream (24 kHz), then it fails: the worker falls back to eSpeak NG
    (22.05 kHz) for the text, and the live stream carries on with eSpeak's sentences from where it was,
    resampled into the one encoder. The finished file is eSpeak's alone."""
    upstream.mode = "ok_then_fail"
    upstream.ok_count = 2
    sentences = [f"Sentence {n} of a story that changes voices {uuid.uuid4().hex[:4]}." for n in
                 ("one", "two", "three", "four", "five", "six")]
    said = " ".join(sentences)
    body = {"input": said, "response_format": "wav", "stream_format": "audio"}
    with client.stream("POST", "/v1/audio/speech", json=body) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["x-tts-engine"] == "external"  # who spoke first
        streamed = decode_wav(resp.read())
    assert streamed.sample_rate == RATE
    assert_speech(streamed, said)
    # It begins with the upstream's 220 Hz tone and ends with eSpeak's speech
    assert tone_share(streamed.samples[:RATE // 2]) > 0.5
    assert tone_share(streamed.samples[-RATE:]) < 0.2
    job = poll_job(client, f"/api/jobs/{resp.headers['x-job-id']}")
    assert job["status"] == "succeeded" and job["engine"] == "espeak" and job["fallback"] is True
    assert len([r for r in upstream.requests if r["path"].startswith("/v1")]) == 2 + 3  # 2 ok, 1 + 2 retries
    whole = decode_wav(client.get(job["audio_url"]).content)
    assert whole.sample_rate == 22050
    assert_speech(whole, said)


def test_stream_follows_a_fallback_to_another_voice_of_the_same_engine(upstream, tmp_path):
    """VOICE_FALLBACKS chains two voices of one engine: the stream follows the voice in use, not the engine."""
    env = {"ENGINES": "external,espeak", "EXTERNAL_URL": upstream.url + "/v1", "DEFAULT_VOICE": "external:default",
           "EXTERNAL_VOICES": "default=en-US,narrator=en-US", "EXTERNAL_RETRIES": "0",
           "VOICE_FALLBACKS": "external:default=external:narrator|espeak:en-us"}
    with running_service(tmp_path / "data", env) as proc, httpx.Client(base_url=proc.url, timeout=60) as c:
        upstream.mode, upstream.ok_count, upstream.fail_voice = "ok_then_fail", 2, "default"
        upstream.requests.clear()
        said = " ".join(f"Part {n} of a tale told by two voices {uuid.uuid4().hex[:4]}." for n in
                        ("one", "two", "three", "four", "five"))
        body = {"input": said, "response_format": "wav", "stream_format": "audio"}
        with c.stream("POST", "/v1/audio/speech", json=body) as resp:
            assert resp.status_code == 200
            streamed = decode_wav(resp.read())
        assert_speech(streamed, said)
        job = poll_job(c, f"/api/jobs/{resp.headers['x-job-id']}")
        assert job["status"] == "succeeded" and job["engine"] == "external" and job["fallback"] is True
        whole = decode_wav(c.get(job["audio_url"]).content)
        # the stream: 2 sentences of "default", then the rest of "narrator"; all the same tone, so the
        # stream is as long as the finished file (which is narrator's alone) within the stitching pauses
        assert abs(streamed.seconds - whole.seconds) < 0.3, (streamed.seconds, whole.seconds)
        voices = [r["voice"] for r in upstream.requests]
        assert voices[:3] == ["default"] * 3 and set(voices[3:]) == {"narrator"}
        upstream.fail_voice = ""


def test_readiness_follows_the_live_canaries(upstream, tmp_path):
    """Canaries run every PROBE_INTERVAL_S in the worker: when the only engine of the chain stops answering,
    /readyz turns 503 within a few intervals, and ready again once it is back — not the start-up result."""
    env = {"ENGINES": "external", "EXTERNAL_URL": upstream.url + "/v1", "DEFAULT_VOICE": "external:default",
           "EXTERNAL_TIMEOUT_S": "0.5", "EXTERNAL_RETRIES": "0", "PROBE_INTERVAL_S": "0.5"}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    upstream.mode = "ok"

    def ready_becomes(expected: int) -> dict:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            answer = httpx.get(proc.url + "/readyz", timeout=10)
            if answer.status_code == expected:
                return answer.json()
            time.sleep(0.2)
        raise AssertionError(f"/readyz never answered {expected}")

    try:
        proc.wait_ready()
        first = httpx.get(proc.url + "/health/tts").json()["engines"]["external"]["canary"][0]
        time.sleep(1.2)
        later = httpx.get(proc.url + "/health/tts").json()["engines"]["external"]["canary"][0]
        assert later["probed_at"] > first["probed_at"] and later["age_s"] < 1.5
        upstream.mode = "500"
        down = ready_becomes(503)
        assert down["checks"]["engine"]["ok"] is False
        tts = httpx.get(proc.url + "/health/tts")
        assert tts.status_code == 503 and tts.json()["engines"]["external"]["canary"][0]["ok"] is False
        upstream.mode = "ok"
        back = ready_becomes(200)
        assert back["checks"]["engine"]["engines"] == ["external"]
        assert back["checks"]["engine"]["canary_age_s"]["external"] < 2
    finally:
        upstream.mode = "ok"
        proc.stop()
