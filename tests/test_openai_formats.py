"""OpenAI compatibility: every response_format through the official client, speed, model, catalogue routes."""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import pytest
from openai import OpenAI

from tests.support import DecodedAudio, assert_speech, decode_wav, decode_with_ffmpeg

# format → (content type, sample rate after decoding)
EXPECTED = {
    "mp3": ("audio/mpeg", 22050),
    "opus": ("audio/ogg", 48000),
    "aac": ("audio/aac", 22050),
    "flac": ("audio/flac", 22050),
    "wav": ("audio/wav", 22050),
    "pcm": ("audio/pcm", 24000),
}


@pytest.fixture()
def openai_client(service):
    return OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def decode(fmt: str, data: bytes) -> DecodedAudio:
    if fmt == "pcm":  # raw 16-bit little-endian mono at 24 kHz, no header
        assert data[:4] != b"RIFF" and len(data) % 2 == 0
        return DecodedAudio(24000, 1, np.frombuffer(data, dtype="<i2"))
    if fmt == "wav":
        return decode_wav(data)
    return decode_with_ffmpeg(data)


@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_every_format_with_the_official_client(openai_client, fmt):
    text = f"Format {fmt} carries the same sentence, take {uuid.uuid4().hex[:4]}."
    raw = openai_client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input=text,
                                                              response_format=fmt)
    ctype, rate = EXPECTED[fmt]
    assert raw.headers["content-type"] == ctype
    audio = decode(fmt, raw.parse().content)
    assert_speech(audio, text, sample_rate=rate)


def test_formats_are_distinct_cache_entries_served_with_their_types(service):
    text = f"Same words, six encodings, {uuid.uuid4().hex[:4]}."
    with httpx.Client(base_url=service.url, timeout=120) as c:
        etags = set()
        for fmt in EXPECTED:
            resp = c.post("/v1/audio/speech", json={"input": text, "response_format": fmt})
            etags.add(resp.headers["etag"])
            key = resp.headers["etag"].strip('"')
            cached = c.get(f"/audio/{key}")
            assert cached.headers["content-type"] == EXPECTED[fmt][0]
            assert cached.content == resp.content
    assert len(etags) == len(EXPECTED)


def test_every_encoding_of_one_pcm_has_its_length():
    """Encoders add only codec padding (priming, frame rounding), never lose or add speech."""
    from runtime.speech.audio import encode
    from runtime.speech.engines.espeak import EspeakEngine

    pcm = EspeakEngine().synthesize("One recording, encoded six ways.", "en-us")
    for fmt, (_, rate) in EXPECTED.items():
        audio = decode(fmt, encode(pcm, fmt))
        assert audio.sample_rate == rate
        assert -0.01 < audio.seconds - pcm.seconds < 0.12, (fmt, audio.seconds, pcm.seconds)


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_espeak_speed_is_honoured_beyond_its_native_rate_range(service, speed):
    text = "Speed changes how long this sentence takes to say out loud."
    with httpx.Client(base_url=service.url, timeout=120) as c:
        def seconds(s):
            body = {"input": text, "voice": "espeak:en-us", "response_format": "wav", "speed": s}
            return decode_wav(c.post("/v1/audio/speech", json=body).content).seconds

        ratio = seconds(1.0) / seconds(speed)
    assert speed * 0.85 < ratio < speed * 1.15, (speed, ratio)


def test_model_picks_the_engine(service):
    with httpx.Client(base_url=service.url, timeout=120) as c:
        def post(**body):
            return c.post("/v1/audio/speech", json={"input": "Which engine?", "response_format": "wav", **body})

        assert post(model="espeak", voice="alloy").headers["x-tts-engine"] == "espeak"
        assert post(model="espeak").headers["x-tts-engine"] == "espeak"
        assert post(model="piper", voice="nova").headers["x-tts-engine"] == "piper"
        assert post(model="tts-1-hd", voice="espeak:de").headers["x-tts-engine"] == "espeak"
        mismatch = post(model="piper", voice="espeak:de")
        assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "model_voice_mismatch"
        unknown = post(model="kokoro-v9")
        assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_model"
        assert "tts-1" in unknown.json()["error"]["message"]


def test_models_and_voices_catalogue(openai_client, service):
    ids = [m.id for m in openai_client.models.list()]
    assert ids[:3] == ["tts-1", "tts-1-hd", "gpt-4o-mini-tts"] and {"piper", "espeak"} <= set(ids)
    voices = httpx.get(service.url + "/v1/audio/voices").json()
    assert voices["default"] == "piper:en_US-joe-medium"
    # the current de-facto shape, as Home Assistant's OpenAI TTS integration (sfortis/openai_tts) reads it
    by_id = {v["id"]: v for v in voices["voices"]}
    assert by_id["piper:en_US-joe-medium"]["name"] == "Joe (English, US) — Piper"
    assert by_id["espeak:en-us"]["language"] == "en-us" and by_id["espeak:en-us"]["name"].endswith("— eSpeak NG")
    assert voices["aliases"]["alloy"] == voices["aliases"]["verse"] == "piper:en_US-joe-medium"
    assert len(voices["aliases"]) == 11


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_long_wav_and_flac_come_whole_with_true_lengths_unless_streaming_is_asked(service, fmt):
    """A strict reader's duration of the answer equals the decoded audio's (a streamed WAV's 0xFFFFFFFF sizes
    read as 27 hours); the whole answer and a later cache hit are the same file."""
    import io

    import soundfile

    tag = uuid.uuid4().hex[:6]
    text = f"The first sentence of {tag} is here. A second one follows it. The third one ends the text."
    with httpx.Client(base_url=service.url, timeout=120) as c:
        whole = c.post("/v1/audio/speech", json={"input": text, "response_format": fmt})
        assert whole.status_code == 200 and int(whole.headers["content-length"]) == len(whole.content)
        info = soundfile.info(io.BytesIO(whole.content))
        samples, rate = soundfile.read(io.BytesIO(whole.content), dtype="int16")
        assert info.samplerate == rate == 22050 and info.channels == 1
        assert abs(info.duration - len(samples) / rate) <= 0.02 * info.duration
        assert_speech(DecodedAudio(rate, 1, samples), text, sample_rate=22050)
        hit = c.post("/v1/audio/speech", json={"input": text, "response_format": fmt})
        assert hit.headers["x-cache"] == "hit" and hit.content == whole.content

        other = text.replace(tag, uuid.uuid4().hex[:6])
        with c.stream("POST", "/v1/audio/speech", json={"input": other, "response_format": fmt,
                                                        "stream_format": "audio"}) as streamed:
            body = streamed.read()
            assert "content-length" not in streamed.headers  # sent as it was produced
        if fmt == "wav":
            assert body[4:8] == b"\xff\xff\xff\xff" and body[40:44] == b"\xff\xff\xff\xff"  # OpenAI's convention
        assert_speech(decode(fmt, body), other, sample_rate=22050)


NOTHING_TO_SAY = [".", "\U0001f642 !!! \u2026", "--- *** ---", "\U0001e9ff"]


@pytest.mark.parametrize("text", NOTHING_TO_SAY)
def test_text_with_nothing_to_speak_is_a_short_silence_on_every_route(service, text):
    """Clients probe servers with texts such as "." and expect audio: a short valid silence in the format
    asked for, on the OpenAI, MaryTTS and job routes; an empty text stays 400 empty_text."""
    with httpx.Client(base_url=service.url, timeout=120) as c:
        for fmt in EXPECTED:
            resp = c.post("/v1/audio/speech", json={"input": text, "response_format": fmt})
            assert resp.status_code == 200 and resp.headers["content-type"] == EXPECTED[fmt][0], resp.text
            audio = decode(fmt, resp.content)
            assert 0.05 < audio.seconds < 0.5 and audio.rms < 50, (fmt, audio.seconds, audio.rms)
        mary = c.get("/process", params={"INPUT_TEXT": text, "INPUT_TYPE": "TEXT", "OUTPUT_TYPE": "AUDIO",
                                         "AUDIO": "WAVE_FILE", "LOCALE": "en_US"})
        assert mary.status_code == 200 and 0.05 < decode_wav(mary.content).seconds < 0.5
        job = c.post("/api/synthesize?wait=30", json={"text": text, "format": "wav"}).json()
        assert job["status"] == "succeeded", job
        assert 0.05 < decode_wav(c.get(job["audio_url"]).content).seconds < 0.5
        assert c.post("/v1/audio/speech", json={"input": " "}).json()["error"]["code"] == "empty_text"


# (format, streamed). Not AAC: ADTS has no length field, and readers estimate it (see the README)
STRICT = [("mp3", False), ("opus", False), ("flac", False), ("wav", False),
          ("mp3", True), ("opus", True), ("wav", True)]


@pytest.mark.parametrize(("fmt", "streamed"), STRICT)
def test_a_strict_reader_finds_the_length_the_audio_has(service, fmt, streamed):
    """The duration ffmpeg reads from the file (as ffprobe would) is within 2 % of the audio it decodes."""
    import re
    import subprocess
    import tempfile

    import imageio_ffmpeg

    text = f"First sentence {uuid.uuid4().hex[:5]} is here. A second one follows it. The third ends it."
    body = {"input": text, "response_format": fmt, **({"stream_format": "audio"} if streamed else {})}
    answer = httpx.post(service.url + "/v1/audio/speech", json=body, timeout=120)
    assert answer.status_code == 200
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    with tempfile.NamedTemporaryFile(suffix={"opus": ".ogg"}.get(fmt, f".{fmt}")) as file:
        file.write(answer.content)
        file.flush()
        probed = subprocess.run([ffmpeg, "-hide_banner", "-i", file.name], capture_output=True, text=True).stderr
        found = re.search(r"Duration: (\d+):(\d+):([\d.]+)", probed)
        assert found, probed
        declared = int(found[1]) * 3600 + int(found[2]) * 60 + float(found[3])
        decoded = decode_with_ffmpeg(answer.content)
    assert abs(declared - decoded.seconds) <= 0.02 * decoded.seconds, (declared, decoded.seconds)
    assert_speech(decoded, text)
