"""POST /v1/audio/speech through the real service: audio decoded and checked as audio."""

from __future__ import annotations

import uuid

import pytest

from tests.support import assert_speech, decode_wav, decode_with_ffmpeg

PIPER_RATE = 22050


def speak(client, text: str, **extra):
    body = {"model": "tts-1", "input": text, "voice": "alloy", "response_format": "wav", **extra}
    return client.post("/v1/audio/speech", json=body)


def unique(text: str) -> str:
    """The text made unique, still one sentence (so the answer is one file, not a stream)."""
    return f"{text.rstrip('.!?')}, reference {uuid.uuid4().hex[:6]}."


def test_wav_is_speech_from_piper(client):
    text = unique("The weather today is sunny with a light breeze from the west.")
    resp = speak(client, text)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "audio/wav"
    assert resp.headers["x-tts-engine"] == "piper"
    assert resp.headers["x-tts-fallback"] == "false"
    assert resp.headers["x-cache"] == "miss"
    assert_speech(decode_wav(resp.content), text, sample_rate=PIPER_RATE)


def test_mp3_decodes_to_speech(client):
    text = unique("An mp3 file should decode back into audible speech.")
    resp = speak(client, text, response_format="mp3")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "audio/mpeg"
    assert resp.content[:3] == b"ID3" or resp.content[0] == 0xFF, "not an MP3 stream"
    audio = decode_with_ffmpeg(resp.content)
    assert_speech(audio, text, sample_rate=PIPER_RATE)


def test_default_format_is_mp3_as_in_openai(client):
    resp = client.post("/v1/audio/speech", json={"model": "tts-1", "input": unique("Default format."),
                                                 "voice": "alloy"})
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "audio/mpeg"


def test_duration_grows_with_text_length(client):
    # No uniqueness tag here: a spelled-out tag would swamp the short text (these texts are unique anyway)
    short = "One short line."
    long = ("One short line, followed by a much longer stretch of text that keeps going for a "
            "while so that the spoken audio must be clearly longer than the short one.")
    a = decode_wav(speak(client, short).content)
    b = decode_wav(speak(client, long).content)
    assert b.seconds > 2.5 * a.seconds, (a.seconds, b.seconds)


def test_speed_changes_duration_and_cache_entry(client):
    text = unique("Speed should change how long this sentence takes to say.")
    normal = speak(client, text)
    fast = speak(client, text, speed=2.0)
    assert normal.headers["etag"] != fast.headers["etag"]
    ratio = decode_wav(normal.content).seconds / decode_wav(fast.content).seconds
    # Piper scales phoneme lengths, not pauses: 2x speed gives ~1.5x shorter audio (exact speed is issue 3)
    assert 1.35 < ratio < 2.5, ratio


def test_second_identical_request_is_a_cache_hit_with_same_bytes(client):
    text = unique("Cache me if you can.")
    first = speak(client, text)
    second = speak(client, text)
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]


def test_whitespace_variants_share_one_cache_entry(client):
    text = unique("Normalised   text shares\tone entry.")
    first = speak(client, text)
    second = speak(client, "  " + text.replace("   ", " ").replace("\t", "  ") + "\n")
    assert second.headers["x-cache"] == "hit"
    assert first.headers["etag"] == second.headers["etag"]


def test_unknown_optional_fields_are_ignored(client):
    resp = speak(client, unique("Extra fields are fine."), instructions="Speak calmly.", stream_format="audio",
                 user="someone", temperature=0.3)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("voice", ["alloy", "nova", "piper:en_US-joe-medium", "en_US-joe-medium"])
def test_voice_names_resolve_to_piper(client, voice):
    resp = speak(client, unique("Which voice am I?"), voice=voice)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-tts-engine"] == "piper"


def test_espeak_voice_speaks(client):
    text = unique("eSpeak speaks this sentence.")
    resp = speak(client, text, voice="espeak:en-us")
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-tts-engine"] == "espeak"
    assert_speech(decode_wav(resp.content), text, sample_rate=22050)


def test_espeak_other_language(client):
    text = "Guten Tag, wie geht es Ihnen heute?"
    resp = speak(client, text, voice="espeak:de")
    assert resp.status_code == 200, resp.text
    assert_speech(decode_wav(resp.content), text)
