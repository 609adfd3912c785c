"""Concurrent callers: distinct requests all succeed with their own audio; identical ones share one synthesis."""

from __future__ import annotations

import itertools
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support import assert_speech, decode_wav


def post(url: str, text: str) -> httpx.Response:
    with httpx.Client(timeout=180) as c:
        return c.post(url + "/v1/audio/speech",
                      json={"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav"})


def test_twenty_concurrent_distinct_requests(service):
    # 2 to 40 words (the session's data directory is fresh, so these are all cache misses), so every
    # answer has its own expected duration.
    texts = ["Concurrent " + " ".join(["word"] * (2 * i + 1)) + "." for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda t: post(service.url, t), texts))
    durations = []
    for text, resp in zip(texts, responses, strict=True):
        assert resp.status_code == 200, resp.text
        audio = decode_wav(resp.content)
        assert_speech(audio, text, sample_rate=22050)
        durations.append(audio.seconds)
    assert len({r.headers["etag"] for r in responses}) == 20
    # Each answer is its own text: durations rise with length (allow small local wobble).
    assert durations[-1] > durations[0] * 5
    rising = sum(b > a for a, b in itertools.pairwise(durations))
    assert rising >= 15, durations


def test_twenty_concurrent_identical_requests_synthesise_once(service):
    text = f"Everybody asks for the same sentence at the same time, {uuid.uuid4().hex[:6]}."
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: post(service.url, text), range(20)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    assert len({r.content for r in responses}) == 1
    assert_speech(decode_wav(responses[0].content), text, sample_rate=22050)
    key = responses[0].headers["etag"].strip('"').split(".")[0]
    with service.db() as conn:
        rows = conn.execute("SELECT from_cache, status FROM jobs WHERE audio_key = ?", (key,)).fetchall()
    synthesised = [r for r in rows if r["from_cache"] == 0]
    assert len(synthesised) == 1, [dict(r) for r in rows]
    assert synthesised[0]["status"] == "succeeded"
