"""Streaming /v1/audio/speech: chunked audio as it is produced (stream_format "audio", the default) and
server-sent events (stream_format "sse"), through the official client's streaming helper."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from runtime.errors import StreamAborted, SynthesisFailed
from runtime.speech.streaming import sse_events
from tests.support import assert_speech, decode_with_ffmpeg, poll_job
from tests.test_openai_formats import EXPECTED, decode

# Several sentences shared by the tests: each test adds its own last sentence, so only that one is new
# synthesis (the others come from the per-chunk cache) and every request is still a cache miss.
SHARED = ("The harbour was quiet before dawn. A single gull circled the empty pier. "
          "Far away, a bell rang twice across the water.")


NUMBERS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def words_of(n: int) -> str:
    return " ".join((NUMBERS * 3)[:n])


@pytest.fixture()
def openai_client(service):
    return OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0, timeout=120)


WORDS = ("river", "lantern", "garden", "window", "market", "yellow", "paper", "station", "orange", "winter",
         "harbor", "village", "music", "kitchen", "silver", "forest", "meadow", "evening", "journey", "story",
         "mountain", "basket", "thunder", "candle")


def unique_sentence() -> str:
    """A sentence no other request has used (real words, so its duration stays plausible)."""
    n = uuid.uuid4().int
    tag = " ".join(WORDS[(n >> (8 * i)) % len(WORDS)] for i in range(5))
    return f"Then came the {tag}, and the morning began."


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_official_client_streams_every_format(openai_client, client, fmt):
    text = f"{SHARED} {unique_sentence()}"
    # WAV and FLAC stream only when asked (otherwise whole, with true lengths: test_openai_formats)
    asked = {"stream_format": "audio"} if fmt in ("wav", "flac") else {}
    with openai_client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format=fmt, **asked) as resp:
        assert resp.headers["content-type"] == EXPECTED[fmt][0]
        assert resp.headers["transfer-encoding"] == "chunked" and "content-length" not in resp.headers
        assert resp.headers["x-cache"] == "miss" and resp.headers["x-tts-engine"] == "piper"
        job_id = resp.headers["x-job-id"]
        data = b"".join(resp.iter_bytes())
    streamed = decode(fmt, data)
    assert_speech(streamed, text, sample_rate=EXPECTED[fmt][1])

    # The stream and the finished file the worker cached are the same audio (same length)
    job = poll_job(client, f"/api/jobs/{job_id}")  # the worker encodes the whole file after the last chunk
    assert job["status"] == "succeeded" and job["progress"]["chunks_total"] == 4, job
    whole = decode(fmt, client.get(job["audio_url"]).content)
    assert abs(streamed.seconds - whole.seconds) < 0.12 + 0.02 * whole.seconds, (streamed.seconds, whole.seconds)

    # The same request again is a cache hit: the whole file, with its length
    again = client.post("/v1/audio/speech", json={"input": text, "voice": "alloy", "response_format": fmt})
    assert again.headers["x-cache"] == "hit" and int(again.headers["content-length"]) == len(again.content)


def test_first_audio_arrives_before_the_rest_is_synthesised(service, client):
    sentences = [f"Sentence {words_of(n % 6 + 2)} of a story told slowly, bit by bit."
                 for n in range(10)]
    text = f"{unique_sentence()} " + " ".join(sentences)
    start = time.perf_counter()
    with client.stream("POST", "/v1/audio/speech",
                       json={"input": text, "voice": "alloy", "response_format": "mp3"}) as resp:
        assert resp.status_code == 200
        chunks = resp.iter_bytes()
        first = next(chunks)
        first_at = time.perf_counter() - start
        assert first[:3] == b"ID3" or first[0] == 0xFF  # mp3 bytes
        progress = client.get(f"/api/jobs/{resp.headers['x-job-id']}").json()
        rest = b"".join(chunks)
        total = time.perf_counter() - start
    assert progress["status"] == "running", progress
    assert progress["progress"]["chunks_done"] < progress["progress"]["chunks_total"] == 11, progress
    assert first_at < total / 2, (first_at, total)
    assert_speech(decode("mp3", first + rest), text, sample_rate=22050)


def test_sse_through_the_official_client(openai_client, client):
    text = f"{SHARED} {unique_sentence()}"
    for expected_cache in ("miss", "hit"):
        with openai_client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input=text, response_format="pcm", stream_format="sse") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            assert resp.headers["x-cache"] == expected_cache
            events = [json.loads(line[len("data: "):]) for line in resp.iter_lines() if line.startswith("data: ")]
            if expected_cache == "miss":
                poll_job(client, f"/api/jobs/{resp.headers['x-job-id']}")
        assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
        assert len(events) >= 3  # audio arrived in several deltas
        assert events[-1] == {"type": "speech.audio.done",
                              "usage": {"input_tokens": len(text), "output_tokens": 0, "total_tokens": len(text)}}
        pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
        assert_speech(decode("pcm", pcm), text, sample_rate=24000)


def test_short_text_is_one_file_even_when_streamed(client):
    resp = client.post("/v1/audio/speech", json={"input": unique_sentence(), "voice": "alloy",
                                                 "response_format": "wav", "stream_format": "audio"})
    assert resp.status_code == 200 and int(resp.headers["content-length"]) == len(resp.content)


def test_bad_stream_format_is_a_clear_error(client):
    resp = client.post("/v1/audio/speech", json={"input": "Hello.", "voice": "alloy", "stream_format": "video"})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_stream_format"


def _ffmpeg_children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"ffmpeg" in cmd:
            found.append(int(proc.name))
    return found


def test_a_caller_that_hangs_up_mid_stream_leaves_no_encoder_behind(service, client):
    text = f"{unique_sentence()} " + " ".join(f"Part {words_of(n + 2)} of a text nobody hears." for n in range(8))
    with client.stream("POST", "/v1/audio/speech", json={"input": text, "voice": "alloy", "response_format": "mp3"}) \
            as resp:
        body = resp.iter_bytes()  # (kept: a dropped iterator closes the response at once)
        next(body)
        assert resp.headers["transfer-encoding"] == "chunked", resp.headers
        assert _ffmpeg_children(service.proc.pid), "the stream's encoder should be running"
        job_url = f"/api/jobs/{resp.headers['x-job-id']}"
    deadline = time.monotonic() + 60
    while _ffmpeg_children(service.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _ffmpeg_children(service.proc.pid), "the encoder outlived its caller"
    # the job itself goes on and caches the whole audio for the next caller: a whole, decodable file
    done = poll_job(client, job_url)
    assert done["status"] == "succeeded" and done["progress"]["chunks_done"] == done["progress"]["chunks_total"] == 9
    cached = client.get(done["audio_url"])
    assert cached.status_code == 200 and cached.headers["content-type"] == "audio/mpeg"
    assert_speech(decode_with_ffmpeg(cached.content), text)


def test_sse_reports_a_failure_after_the_first_event_as_an_error_event():
    async def failing():
        yield b"abc"
        raise SynthesisFailed("synthesis failed: engine broke")

    async def aborted():
        yield b"abc"
        raise StreamAborted("chunk 3 is no longer cached")

    async def collect(source):
        return [json.loads(e[len(b"data: "):]) async for e in sse_events(source, 10)]

    events = asyncio.run(collect(failing()))
    assert events[0] == {"type": "speech.audio.delta", "audio": base64.b64encode(b"abc").decode()}
    assert events[1] == {"type": "error", "error": {"code": "synthesis_failed",
                                                    "message": "synthesis failed: engine broke"}}
    assert asyncio.run(collect(aborted()))[1]["error"]["code"] == "stream_aborted"


def test_stream_of_a_caller_and_of_a_second_caller_joining_the_same_job(client):
    """Two identical requests share one job (single-flight); both stream the whole audio."""
    text = f"{unique_sentence()} {SHARED} And that was the end of the night."
    body = {"input": text, "voice": "alloy", "response_format": "wav", "stream_format": "audio"}

    def fetch() -> httpx.Response:
        with httpx.Client(base_url=str(client.base_url), timeout=120) as c:
            return c.post("/v1/audio/speech", json=body)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: fetch(), range(2))
    assert a.headers["x-job-id"] == b.headers["x-job-id"]
    da, db = decode("wav", a.content), decode("wav", b.content)
    assert_speech(da, text, sample_rate=22050)
    assert abs(da.seconds - db.seconds) < 0.01
