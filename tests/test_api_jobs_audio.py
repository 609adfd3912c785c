"""POST /api/synthesize, GET /api/jobs/{id}, GET /audio/{key}.{ext}."""

from __future__ import annotations

import uuid

from tests.support import assert_speech, decode_wav, poll_job


def unique(text: str) -> str:
    return f"{text} Ticket {uuid.uuid4().hex[:6]}."




def test_synthesize_returns_202_then_job_succeeds(client):
    text = unique("Jobs run in the background and can be polled.")
    resp = client.post("/api/synthesize", json={"text": text, "voice": "piper:en_US-joe-medium", "format": "wav"})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] in ("queued", "running")
    assert body["status_url"] == f"/api/jobs/{body['id']}"
    assert resp.headers["location"] == body["status_url"]
    assert body["audio_url"] is None
    job = poll_job(client, body["status_url"])
    assert job["status"] == "succeeded", job
    assert job["engine"] == "piper" and job["fallback"] is False and job["from_cache"] is False
    assert job["error"] is None and job["attempts"] == 1
    assert job["timings"]["synthesis_s"] > 0 and job["audio_seconds"] > 1
    audio = client.get(job["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert_speech(decode_wav(audio.content), text, sample_rate=22050)


def test_synthesize_with_wait_answers_200_when_ready(client):
    resp = client.post("/api/synthesize?wait=30", json={"text": unique("Waiting is allowed."), "format": "mp3"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "succeeded" and body["audio_url"].endswith(".mp3")
    assert client.get(body["audio_url"]).headers["content-type"] == "audio/mpeg"


def test_synthesize_with_too_short_wait_still_202(client):
    long_text = unique(" ".join(["This sentence is here to make the job take a little while."] * 8))
    resp = client.post("/api/synthesize?wait=0.05", json={"text": long_text})
    assert resp.status_code == 202
    assert poll_job(client, resp.json()["status_url"])["status"] == "succeeded"


def test_cache_hit_answers_200_at_once_with_a_job_record(client):
    text = unique("Hit me twice.")
    first = client.post("/api/synthesize?wait=30", json={"text": text}).json()
    resp = client.post("/api/synthesize", json={"text": text})
    assert resp.status_code == 200
    second = resp.json()
    assert second["id"] != first["id"] and second["from_cache"] is True
    assert second["audio_url"] == first["audio_url"]
    assert client.get(second["status_url"]).json()["status"] == "succeeded"


def test_audio_etag_range_and_conditional(client):
    job = client.post("/api/synthesize?wait=30", json={"text": unique("Range requests for seeking.")}).json()
    url = job["audio_url"]
    full = client.get(url)
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["accept-ranges"] == "bytes"
    etag = full.headers["etag"]
    size = len(full.content)

    part = client.get(url, headers={"range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{size}"
    assert part.content == full.content[:100]

    tail = client.get(url, headers={"range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == full.content[-50:]

    open_end = client.get(url, headers={"range": f"bytes={size - 10}-"})
    assert open_end.content == full.content[-10:]

    bad = client.get(url, headers={"range": f"bytes={size + 5}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{size}"
    assert bad.json()["error"]["code"] == "range_not_satisfiable"

    stale_if_range = client.get(url, headers={"range": "bytes=0-9", "if-range": '"other"'})
    assert stale_if_range.status_code == 200 and len(stale_if_range.content) == size

    not_modified = client.get(url, headers={"if-none-match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""

    head = client.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == size


def test_voices_lists_both_engines(client):
    body = client.get("/api/voices").json()
    assert body["default"] == "piper:en_US-joe-medium"
    by_engine = {}
    for voice in body["voices"]:
        assert set(voice) >= {"id", "engine", "name", "language"}
        by_engine.setdefault(voice["engine"], []).append(voice)
    assert [v["id"] for v in by_engine["piper"]] == ["piper:en_US-joe-medium"]
    assert by_engine["piper"][0]["language"] == "en-US"
    assert len(by_engine["espeak"]) > 50
    assert any(v["id"] == "espeak:en-us" for v in by_engine["espeak"])
    english = client.get("/api/voices", params={"language": "en"}).json()["voices"]
    assert english and all(v["language"].lower().startswith("en") for v in english)
    only_piper = client.get("/api/voices", params={"engine": "piper"}).json()["voices"]
    assert [v["engine"] for v in only_piper] == ["piper"]


def test_health_endpoints(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    health = client.get("/health")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert all(checks[name]["ok"] for name in ("api", "db", "queue", "worker"))
    assert checks["worker"]["mode"] == "embedded"
    assert isinstance(checks["queue"]["depth"], int)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert set(body["checks"]["engine"]["engines"]) == {"piper", "espeak"}


def test_request_id_is_echoed(client):
    resp = client.get("/healthz", headers={"x-request-id": "abc123"})
    assert resp.headers["x-request-id"] == "abc123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 16


def test_odd_request_ids_are_replaced(client):
    for odd in ("x" * 65, "has space", "tab\there"):
        resp = client.get("/healthz", headers={"x-request-id": odd})
        assert resp.status_code == 200
        assert resp.headers["x-request-id"] != odd and len(resp.headers["x-request-id"]) == 16
