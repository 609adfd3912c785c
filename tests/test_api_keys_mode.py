"""AUTH_MODE=api_key through real processes: the official openai client with api_key=, cached audio and the
edge micro-cache refusing callers without a key, open probes, per-caller rate limits, and the CLI."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support import ServiceProcess, assert_speech, decode_wav, run_cli


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    proc = ServiceProcess(tmp_path_factory.mktemp("keys") / "data", env={
        "ENGINES": "espeak", "AUTH_MODE": "api_key", "RATE_LIMITS": "voices=3/minute"})
    made = run_cli(proc, "keys", "create", "home-assistant")
    assert made.returncode == 0, made.stderr
    proc.key = made.stdout.strip()
    proc.start()
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()


def test_the_openai_client_needs_the_key(keyed):
    text = f"Keys keep strangers out, take {uuid.uuid4().hex[:6]}."
    stranger = OpenAI(base_url=keyed.url + "/v1", api_key="sk-not-ours", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as refused:
        stranger.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav")
    assert refused.value.status_code == 401
    assert refused.value.response.headers["www-authenticate"].startswith("Bearer")
    assert refused.value.response.json()["error"]["code"] == "invalid_api_key"
    friend = OpenAI(base_url=keyed.url + "/v1", api_key=keyed.key, max_retries=0, timeout=60)
    raw = friend.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=text,
                                                       response_format="wav")
    assert raw.headers["content-type"] == "audio/wav"
    assert_speech(decode_wav(raw.parse().content), text)
    # the job counts against the key, not the address (queue fairness, rate limits)
    with keyed.db() as db:
        (caller,) = db.execute("SELECT caller FROM jobs ORDER BY created_at DESC LIMIT 1").fetchone()
    assert caller.startswith("key:")


def test_cached_audio_is_not_served_without_a_key_even_from_the_edge_cache(keyed):
    auth = {"Authorization": f"Bearer {keyed.key}"}
    with httpx.Client(base_url=keyed.url, timeout=60) as c:
        made = c.post("/v1/audio/speech", headers=auth,
                      json={"input": f"A cache hit is still private {uuid.uuid4().hex[:6]}.", "response_format": "wav"})
        assert made.status_code == 200
        path = f"/audio/{made.headers['etag'].strip(chr(34))}"
        for _ in range(3):  # first, second and later GETs: the edge micro-cache must never answer these
            assert c.get(path, headers=auth).status_code == 200
            refused = c.get(path)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "api_key_required"
            assert c.get(path, headers={"X-API-Key": "efk_wrong"}).status_code == 401
        no_key = c.post("/v1/audio/speech", json={"input": "No key, no speech."})
        assert no_key.status_code == 401 and no_key.headers["www-authenticate"].startswith("Bearer")


def test_probes_and_docs_stay_open(keyed):
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert httpx.get(keyed.url + path).status_code == 200, path
    assert httpx.get(keyed.url + "/health").status_code == 401
    doc = httpx.get(keyed.url + "/openapi.json").json()
    assert doc["paths"]["/v1/audio/speech"]["post"]["security"] == [{"bearerKey": []}, {"apiKeyHeader": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    assert doc["paths"]["/api/admin/keys"]["post"]["security"][0] == {"adminSession": [], "csrfToken": []}
    assert set(doc["components"]["securitySchemes"]) == {"bearerKey", "apiKeyHeader", "adminSession", "csrfToken"}


def test_rate_limits_per_caller_per_function(keyed):
    auth = {"Authorization": f"Bearer {keyed.key}"}
    with httpx.Client(base_url=keyed.url, timeout=30) as c:
        answers = [c.get("/api/voices", headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["ratelimit-limit"] == "3"
    limited = answers[3]
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60 and limited.headers["ratelimit-remaining"] == "0"
    other = run_cli(keyed, "keys", "create", "kitchen-tablet").stdout.strip()
    assert httpx.get(keyed.url + "/api/voices", headers={"X-API-Key": other}).status_code == 200  # its own count
    assert httpx.get(keyed.url + "/v1/models", headers=auth).status_code == 200  # other functions: no limit


def test_cli_keys_and_admins(keyed):
    listed = run_cli(keyed, "keys", "list").stdout
    assert "home-assistant" in listed and keyed.key not in listed and keyed.key[:10] in listed
    key_id = next(line.split()[0] for line in listed.splitlines() if "kitchen-tablet" in line)
    weak = run_cli(keyed, "admin", "create", "dave", "--password-stdin", stdin="password1234\n")
    assert weak.returncode == 1 and "too common" in weak.stderr
    assert run_cli(keyed, "admin", "create", "dave", "--password-stdin",
                   stdin="saffron glacier hums loudly\n").returncode == 0
    again = run_cli(keyed, "admin", "create", "dave", "--password-stdin", stdin="saffron glacier hums loudly\n")
    assert again.returncode == 1 and "exists" in again.stderr
    assert run_cli(keyed, "admin", "disable", "dave").returncode == 0
    assert "dave  (disabled)" in run_cli(keyed, "admin", "list").stdout
    assert run_cli(keyed, "admin", "enable", "dave").returncode == 0
    assert run_cli(keyed, "admin", "reset-password", "dave", "--password-stdin",
                   stdin="cobalt lagoon wanders far\n").returncode == 0
    assert run_cli(keyed, "keys", "revoke", key_id).returncode == 0
    assert run_cli(keyed, "keys", "revoke", "000000000000").returncode == 1
    with keyed.db() as db:
        actions = {row[0] for row in db.execute("SELECT action FROM audit_log WHERE actor LIKE 'cli:%'")}
    assert {"key.create", "key.revoke", "admin.create", "admin.disable", "admin.enable", "admin.password"} <= actions


def test_home_assistants_openai_tts_integration_works_unchanged(keyed):
    """The requests sfortis/openai_tts sends, as its code sends them: the key probe (api_validation.py: a
    single "." in mp3, only 401/403 mean a bad key), voice discovery (voice_discovery.py: GET
    /v1/audio/voices, {"voices": [{"id", "name"}]}), and speech, whole through urllib and streamed (opus)
    through aiohttp (openaitts_engine.py)."""
    import asyncio
    import json
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    import aiohttp

    from tests.support import decode_with_ffmpeg

    speech_url = keyed.url + "/v1/audio/speech"
    probe = {"model": "tts-1", "input": ".", "voice": "alloy", "response_format": "mp3"}

    def post(key: str, payload: dict) -> tuple[int, bytes, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "HomeAssistant-OpenAI-TTS",
                   "Authorization": f"Bearer {key}"}
        request = Request(speech_url, data=json.dumps(payload).encode("utf-8"), headers=headers, method="POST")
        try:
            with urlopen(request, timeout=30) as resp:
                return resp.status, resp.read(), resp.headers["Content-Type"]
        except HTTPError as exc:
            return exc.code, exc.read(), exc.headers["Content-Type"]

    assert post("sk-wrong", probe)[0] == 401
    status, body, ctype = post(keyed.key, probe)
    assert status == 200 and ctype == "audio/mpeg" and decode_with_ffmpeg(body).seconds < 0.5

    listed = httpx.get(keyed.url + "/v1/audio/voices", headers={"Authorization": f"Bearer {keyed.key}"}).json()
    pairs = [(v["id"], v["name"]) for v in listed["voices"]]
    assert pairs and all(voice_id and name and name != voice_id for voice_id, name in pairs)
    assert dict(pairs)["espeak:en-us"].endswith("— eSpeak NG")

    text = f"The front door was unlocked a minute ago, take {uuid.uuid4().hex[:5]}."
    status, body, ctype = post(keyed.key, {"model": "tts-1", "input": text, "voice": "alloy",
                                           "response_format": "mp3", "speed": 1.0, "instructions": "Calm."})
    assert status == 200 and ctype == "audio/mpeg"
    assert_speech(decode_with_ffmpeg(body), text)

    async def stream() -> tuple[str, bytes, int]:
        payload = {"model": "tts-1", "input": f"{text} And the lights are off.", "voice": "alloy",
                   "response_format": "opus", "speed": 1.0}
        headers = {"Content-Type": "application/json", "User-Agent": "HomeAssistant-OpenAI-TTS",
                   "Authorization": f"Bearer {keyed.key}"}
        async with aiohttp.ClientSession() as session, session.post(
                speech_url, json=payload, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as response:
            response.raise_for_status()
            chunks = [chunk async for chunk in response.content.iter_chunked(4096)]
            return response.headers["Content-Type"], b"".join(chunks), len(chunks)

    ctype, audio, pieces = asyncio.run(stream())
    assert ctype == "audio/ogg" and pieces >= 1
    assert_speech(decode_with_ffmpeg(audio), f"{text} And the lights are off.", sample_rate=48000)
