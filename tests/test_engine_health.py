"""Engine health for real: canary probes at start-up, honest readiness, and the circuit breaker that stops
trying a broken engine — with a corrupt Piper model file, not a mock."""

from __future__ import annotations

import os
import shutil
import time

import httpx
import pytest

from runtime.speech.engines.piper import default_voice_files
from tests.support import ServiceProcess, assert_speech, decode_wav


@pytest.fixture()
def corrupt_piper(tmp_path):
    """A Piper voice whose .onnx is garbage (its config is the real one)."""
    model = tmp_path / "broken" / "en_US-broken-medium.onnx"
    model.parent.mkdir()
    model.write_bytes(os.urandom(4096))
    shutil.copy(default_voice_files()[1], f"{model}.json")
    return model


def test_broken_engine_fails_its_canary_and_its_circuit_opens(tmp_path, corrupt_piper):
    env = {"PIPER_MODEL_PATH": str(corrupt_piper), "DEFAULT_VOICE": "piper:en_US-broken-medium",
           "ENGINE_FAIL_MAX": "2", "ENGINE_COOLDOWN_S": "2"}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    try:
        proc.wait_ready()  # ready: eSpeak NG, the default chain's fallback, passed its canary
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            ready = c.get("/readyz").json()
            engine = ready["checks"]["engine"]
            assert engine["ok"] is True and engine["engines"] == ["espeak"] and engine["chain"] == ["piper", "espeak"]
            assert 0 <= engine["canary_age_s"]["espeak"] < 60  # how old the result it stands on is
            tts = c.get("/health/tts").json()
            piper = tts["engines"]["piper"]
            assert piper["canary"][0]["ok"] is False and "could not load" in piper["canary"][0]["error"]
            assert tts["engines"]["espeak"]["canary"][0]["ok"] is True
            assert tts["ok"] is True and tts["default_chain"] == ["piper", "espeak"]

            def speak(n: int) -> httpx.Response:
                text = f"Request number {n} still gets an answer."
                resp = c.post("/v1/audio/speech", json={"input": text, "response_format": "wav"})
                assert resp.status_code == 200, resp.text
                assert resp.headers["x-tts-engine"] == "espeak" and resp.headers["x-tts-fallback"] == "true"
                assert_speech(decode_wav(resp.content), text)
                return resp

            for n in range(2):  # two failures of piper: the circuit opens
                speak(n)
            circuit = c.get("/health/tts").json()["engines"]["piper"]["circuit"]
            assert circuit["state"] == "open" and circuit["consecutive_failures"] == 2, circuit
            speak(2)  # skipped at once now
            assert "engine piper skipped (circuit open)" in proc.log()

            time.sleep(2.2)  # cool-down over: the next job tries piper once (half-open), fails, reopens
            skipped_before = proc.log().count("skipped (circuit open)")
            speak(3)
            assert proc.log().count("skipped (circuit open)") == skipped_before
            assert "engine piper circuit: open -> half-open" in proc.log()
            assert "engine piper circuit: half-open -> open" in proc.log()
            assert c.get("/health/tts").json()["engines"]["piper"]["circuit"]["state"] == "open"

            tts = c.get("/health/tts").json()
            assert tts["engines"]["espeak"]["fallback_jobs"] == 4 and tts["fallbacks_total"] == 4
    finally:
        proc.stop()


def test_not_ready_when_no_engine_of_the_default_chain_can_speak(tmp_path, corrupt_piper):
    env = {"ENGINES": "piper", "PIPER_MODEL_PATH": str(corrupt_piper), "DEFAULT_VOICE": "piper:en_US-broken-medium"}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    try:
        proc.wait_ready(path="/healthz")
        deadline = time.monotonic() + 30
        while "engine piper failed to load" not in proc.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            ready = c.get("/readyz")
            assert ready.status_code == 503, ready.text
            engine = ready.json()["checks"]["engine"]
            assert engine["ok"] is False and "default chain (piper)" in engine["error"]
            assert c.get("/health/tts").status_code == 503
            # requests get a clear error, not a hang or a 500
            failed = c.post("/v1/audio/speech", json={"input": "Anyone there?", "response_format": "wav"})
            assert failed.status_code == 502 and failed.json()["error"]["code"] == "synthesis_failed"
    finally:
        proc.stop()


def test_model_manifest_disables_a_changed_model_and_the_rest_serves(tmp_path):
    """`python -m runtime models --write-manifest` records the files; a changed file disables its engine at
    start-up with a clear reason, and the service starts with the others."""
    import subprocess
    import sys

    model, config = default_voice_files()
    voice = tmp_path / "voice"
    voice.mkdir()
    shutil.copy(model, voice / model.name)
    shutil.copy(config, voice / config.name)
    data = tmp_path / "data"
    env = {**ServiceProcess(data).env, "PIPER_MODEL_PATH": str(voice / model.name),
           "PIPER_CONFIG_PATH": str(voice / config.name)}

    def models(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "runtime", "models", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    assert models().returncode == 1  # no manifest yet
    written = models("--write-manifest")
    assert written.returncode == 0 and str(voice / model.name) in written.stdout
    assert models().returncode == 0
    with open(voice / model.name, "r+b") as fh:  # one flipped byte
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    checked = models()
    assert checked.returncode == 1 and "changed or is corrupt" in checked.stderr

    proc = ServiceProcess(data, env={"PIPER_MODEL_PATH": env["PIPER_MODEL_PATH"],
                                     "PIPER_CONFIG_PATH": env["PIPER_CONFIG_PATH"]}).start()
    try:
        proc.wait_ready()
        with httpx.Client(base_url=proc.url, timeout=60) as c:
            tts = c.get("/health/tts").json()
            assert "piper" not in tts["engines"] and "changed or is corrupt" in tts["disabled"]["piper"]
            resp = c.post("/v1/audio/speech", json={"input": "The others still speak.", "response_format": "wav"})
            assert resp.status_code == 200 and resp.headers["x-tts-engine"] == "espeak"
        assert "engine piper disabled" in proc.log()
    finally:
        proc.stop()
