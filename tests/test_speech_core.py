"""Engines, text, keys and the actor body, in-process with the real engines."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from runtime.settings import Settings
from runtime.speech.audio import Pcm, encode
from runtime.speech.engines import EngineError, build_engines
from runtime.speech.keys import cache_key
from runtime.speech.text import normalise
from tests.support import assert_speech, decode_wav


@pytest.fixture(scope="module")
def engines():
    return build_engines(Settings())


def test_normalise():
    assert normalise("  Hello\u200b   world\t\n!  ") == "Hello world !"
    assert normalise("e\u0301") == "\u00e9"
    assert normalise("\x00\x07  ") == ""


def test_key_changes_with_every_parameter():
    base = dict(engine="piper", model_id="m1", voice="v", text="hello", fmt="wav", params={"speed": 1.0})
    keys = {cache_key(**base)}
    for change in ({"engine": "espeak"}, {"model_id": "m2"}, {"voice": "w"}, {"text": "hello!"}, {"fmt": "mp3"},
                   {"params": {"speed": 1.5}}):
        keys.add(cache_key(**{**base, **change}))
    assert len(keys) == 7
    assert cache_key(**base) == cache_key(**dict(base))


def test_piper_speaks(engines):
    piper = engines["piper"]
    assert piper.identity().startswith("piper-tts 1.8.0 ")
    pcm = piper.synthesize("Testing the neural voice directly.", "en_US-joe-medium")
    assert_speech(decode_wav(encode(pcm, "wav")), "Testing the neural voice directly.", sample_rate=22050)
    assert piper.probe().ok


def test_piper_unknown_voice(engines):
    with pytest.raises(EngineError, match="no voice"):
        engines["piper"].synthesize("Hello.", "someone-else")


def test_espeak_speaks_and_knows_languages(engines):
    espeak = engines["espeak"]
    names = {v.name for v in espeak.voices()}
    assert {"en-us", "de", "fr-fr"} <= names
    pcm = espeak.synthesize("Formant synthesis is fast.", "en-us")
    assert_speech(decode_wav(encode(pcm, "wav")), "Formant synthesis is fast.", sample_rate=22050)
    with pytest.raises(EngineError, match="no voice"):
        espeak.synthesize("Hello.", "xx-nowhere")


def test_espeak_is_safe_from_many_threads(engines):
    """libespeak-ng is not thread-safe; the adapter serialises it. Each thread must get its own text's audio."""
    espeak = engines["espeak"]
    texts = [" ".join(["number"] * n) for n in range(1, 25)]
    alone = {t: len(espeak.synthesize(t, "en-us").samples) for t in texts}

    def run(text):
        return text, len(espeak.synthesize(text, "en-us").samples)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, texts * 3))
    for text, n in results:
        # eSpeak's length wobbles by a few samples between calls; mixed-up output would differ by whole words.
        assert abs(n - alone[text]) <= 0.01 * alone[text], (text, n, alone[text])


def test_pcm_join_and_peak():
    a = Pcm(np.array([0, 1000], dtype="<i2").tobytes(), 16000)
    b = Pcm(np.array([-2000], dtype="<i2").tobytes(), 16000)
    joined = Pcm.join([a, b], gap_s=0.001)
    assert len(joined.samples) == (2 + 16 + 1) * 2 and joined.peak() == 2000
    with pytest.raises(ValueError):
        Pcm.join([a, Pcm(b.samples, 8000)])


def test_silent_engine_output_is_an_error(engines):
    espeak = engines["espeak"]
    original = espeak._synthesize
    espeak._synthesize = lambda text, voice, speed: Pcm(b"\x00\x00" * 1000, 22050)
    try:
        with pytest.raises(EngineError, match="no audible audio"):
            espeak.synthesize("Hello.", "en-us")
    finally:
        espeak._synthesize = original


def test_streamed_pcm_is_resampled_seamlessly_across_chunks():
    """Streaming ``pcm`` (24 kHz) resamples each sentence as it lands; the filter state carries over, so the
    result is the same as resampling the whole at once (a fresh resampler per chunk is not)."""
    from runtime.speech.audio import PcmResampler

    tone = (np.sin(np.arange(30000) * 2 * np.pi * 440 / 22050) * 10000).astype("<i2").tobytes()
    pieces = (tone[:10000], tone[10000:33334], tone[33334:])
    whole = PcmResampler(22050, 24000)(tone)
    streaming = PcmResampler(22050, 24000)
    assert b"".join(streaming(p) for p in pieces) == whole
    assert b"".join(PcmResampler(22050, 24000)(p) for p in pieces) != whole
    assert abs(len(whole) / 2 - 30000 * 24000 / 22050) <= 2


def test_streamed_wav_header_is_read_by_a_strict_reader():
    import io
    import wave

    from runtime.speech.audio import wav_stream_header

    with wave.open(io.BytesIO(wav_stream_header(22050) + b"\x01\x00" * 100)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        assert w.getnframes() == 0xFFFFFFFF // 2  # OpenAI's open-ended streamed WAV: length unknown


def test_a_null_format_means_the_default_of_each_shape():
    from runtime.settings import Settings
    from runtime.speech.engines import build_engines
    from runtime.speech.request import from_openai, from_synthesize
    from runtime.speech.voices import VoiceCatalog

    settings = Settings(engines=("espeak",), default_voice="espeak:en-us")
    catalog = VoiceCatalog(build_engines(settings), settings)
    assert from_synthesize({"text": "Hi.", "format": None}, catalog, 100).format == "wav"
    assert from_synthesize({"text": "Hi."}, catalog, 100).format == "wav"
    assert from_openai({"input": "Hi.", "response_format": None}, catalog, 100).format == "mp3"
