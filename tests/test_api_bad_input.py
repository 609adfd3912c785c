"""Every caller mistake: a 4xx JSON error with a stable code; no job created, nothing cached."""

from __future__ import annotations

import json

import pytest


def state(service) -> tuple[int, int]:
    """(jobs in the database, files in the audio cache)."""
    with service.db() as conn:
        jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    files = sum(1 for p in (service.data_dir / "audio-cache").rglob("*") if p.is_file())
    return jobs, files


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    assert "Traceback" not in resp.text


OPENAI = "/v1/audio/speech"
SYNTH = "/api/synthesize"

JSON_CASES = [
    # (route, body, status, code)
    (OPENAI, {"input": "", "voice": "alloy"}, 400, "empty_text"),
    (OPENAI, {"input": "   \n\t  ", "voice": "alloy"}, 400, "empty_text"),
    (OPENAI, {"voice": "alloy"}, 400, "invalid_text"),
    (OPENAI, {"input": 42, "voice": "alloy"}, 400, "invalid_text"),
    (OPENAI, {"input": "x" * 4097, "voice": "alloy"}, 400, "text_too_long"),
    (OPENAI, {"input": "Hello.", "voice": "nobody-like-this"}, 400, "unknown_voice"),
    (OPENAI, {"input": "Hello.", "voice": 7}, 400, "unknown_voice"),
    (OPENAI, {"input": "Hello.", "response_format": "ogg-vorbis-xl"}, 400, "unknown_format"),
    (OPENAI, {"input": "Hello.", "speed": 0.1}, 400, "invalid_speed"),
    (OPENAI, {"input": "Hello.", "speed": 4.5}, 400, "invalid_speed"),
    (OPENAI, {"input": "Hello.", "speed": "fast"}, 400, "invalid_speed"),
    (OPENAI, {"input": "Hello.", "speed": True}, 400, "invalid_speed"),
    (OPENAI, {"input": "Hello.", "model": ["tts-1"]}, 400, "unknown_model"),
    (OPENAI, {"input": "Hello.", "model": "gpt-5-voice"}, 400, "unknown_model"),
    (OPENAI, {"input": "Hello.", "model": "piper", "voice": "espeak:de"}, 400, "model_voice_mismatch"),
    (OPENAI, ["not", "an", "object"], 400, "invalid_json"),
    (SYNTH, {"text": ""}, 400, "empty_text"),
    (SYNTH, {"text": "x" * 100_001}, 400, "text_too_long"),
    (SYNTH, {"text": "Hello.", "voice": "ghost"}, 400, "unknown_voice"),
    (SYNTH, {"text": "Hello.", "format": "wma"}, 400, "unknown_format"),
    (SYNTH, {"text": "Hello.", "speed": 0}, 400, "invalid_speed"),
    (SYNTH, "just a string", 400, "invalid_json"),
]


@pytest.mark.parametrize(("route", "body", "status", "code"), JSON_CASES)
def test_bad_json_bodies(client, service, route, body, status, code):
    before = state(service)
    assert_error(client.post(route, json=body), status, code)
    assert state(service) == before


@pytest.mark.parametrize("route", [OPENAI, SYNTH])
def test_invalid_json(client, service, route):
    before = state(service)
    resp = client.post(route, content=b'{"input": "Hello", ', headers={"content-type": "application/json"})
    assert_error(resp, 400, "invalid_json")
    resp = client.post(route, content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert_error(resp, 400, "invalid_json")
    assert state(service) == before


@pytest.mark.parametrize("route", [OPENAI, SYNTH])
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type(client, service, route, ctype):
    before = state(service)
    headers = {"content-type": ctype} if ctype else {}
    resp = client.post(route, content=json.dumps({"input": "Hello.", "text": "Hello."}), headers=headers)
    assert_error(resp, 415, "unsupported_media_type")
    assert state(service) == before


@pytest.mark.parametrize(("route", "size"), [(OPENAI, 70_000), (SYNTH, 1_100_000)])
def test_body_over_the_limit(client, service, route, size):
    before = state(service)
    big = json.dumps({"input": "a" * size, "text": "a" * size})
    assert_error(client.post(route, content=big, headers={"content-type": "application/json"}), 413,
                 "body_too_large")
    assert state(service) == before


def test_body_over_the_limit_without_content_length(client, service):
    """A chunked body has no Content-Length; the limit is enforced while reading."""
    before = state(service)

    def chunks():
        yield b'{"input": "'
        for _ in range(80):
            yield b"a" * 1000
        yield b'"}'

    resp = client.post(OPENAI, content=chunks(), headers={"content-type": "application/json"})
    assert_error(resp, 413, "body_too_large")
    assert state(service) == before


def test_bad_wait_parameter(client, service):
    before = state(service)
    assert_error(client.post(SYNTH + "?wait=soon", json={"text": "Hello."}), 400, "invalid_wait")
    assert_error(client.post(SYNTH + "?wait=-1", json={"text": "Hello."}), 400, "invalid_wait")
    assert_error(client.post(SYNTH + "?wait=100000", json={"text": "Hello."}), 400, "invalid_wait")
    assert state(service) == before


@pytest.mark.parametrize("name", [
    "abc.wav",
    "0" * 64 + ".exe",
    "0" * 63 + "g.wav",
    "0" * 64,
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e.wav",
    ("A" * 64) + ".wav",
])
def test_malformed_audio_keys(client, name):
    resp = client.get(f"/audio/{name}")
    assert resp.status_code in (400, 404), resp.status_code
    assert resp.json()["error"]["code"] in ("invalid_audio_key", "not_found")


@pytest.mark.parametrize("path", ["/audio/../../etc/passwd", "/audio/..%2f..%2fetc%2fpasswd",
                                  "/audio/%2e%2e/%2e%2e/etc/passwd"])
def test_path_traversal_never_reads_files(client, path):
    resp = client.get(path)
    assert resp.status_code in (400, 404)
    assert b"root:" not in resp.content


def test_unknown_audio_key_is_404(client):
    resp = client.get("/audio/" + "ab" * 32 + ".wav")
    assert_error(resp, 404, "audio_not_found")


def test_unknown_route_and_method(client):
    assert_error(client.get("/no/such/function"), 404, "not_found")
    assert_error(client.get(OPENAI), 405, "method_not_allowed")


def test_job_ids(client):
    assert_error(client.get("/api/jobs/not-a-job"), 400, "invalid_job_id")
    assert_error(client.get("/api/jobs/" + "0" * 32), 404, "job_not_found")
