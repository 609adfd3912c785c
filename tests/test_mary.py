"""MaryTTS compatibility, with the request shapes Home Assistant's marytts platform (speak2mary) sends."""

from __future__ import annotations

import http.client
from urllib.parse import urlencode

import httpx
import pytest

from tests.support import assert_speech, decode_wav


def home_assistant_post(service, params: dict) -> tuple[int, dict, bytes]:
    """What speak2mary does: http.client POST /process, urlencoded body, and no Content-Type header."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=60)
    conn.request("POST", "/process", urlencode(params))
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


HA_DEFAULTS = {"OUTPUT_TYPE": "AUDIO", "INPUT_TYPE": "TEXT", "LOCALE": "en_US", "AUDIO": "WAVE_FILE",
               "VOICE": "cmu-slt-hsmm"}


def test_home_assistant_request_speaks_with_the_default_voice(service):
    text = "The front door is open."
    status, headers, body = home_assistant_post(service, {"INPUT_TEXT": text.encode(), **HA_DEFAULTS})
    assert status == 200, body
    assert headers["content-type"] == "audio/wav" and headers["x-tts-engine"] == "piper"
    assert_speech(decode_wav(body), text, sample_rate=22050)


def test_locale_picks_a_voice_when_the_mary_voice_is_unknown(service):
    text = "Die Haustür ist offen."
    status, headers, body = home_assistant_post(service, {"INPUT_TEXT": text.encode(), **HA_DEFAULTS,
                                                          "LOCALE": "de", "VOICE": "bits1-hsmm"})
    assert status == 200, body
    assert headers["x-tts-engine"] == "espeak"
    assert_speech(decode_wav(body), text, sample_rate=22050)


def test_get_with_query_and_our_voice_ids(service):
    resp = httpx.get(service.url + "/process", params={"INPUT_TEXT": "Query string request.", "INPUT_TYPE": "TEXT",
                                                       "OUTPUT_TYPE": "AUDIO", "AUDIO": "WAVE_FILE",
                                                       "VOICE": "espeak:en-us"}, timeout=60)
    assert resp.status_code == 200 and resp.headers["x-tts-engine"] == "espeak"
    assert_speech(decode_wav(resp.content), "Query string request.")


def test_rate_effect_slows_speech(service):
    text = "The rate effect stretches this sentence."
    base = dict(HA_DEFAULTS, INPUT_TEXT=text, VOICE="espeak:en-us")
    _, _, normal = home_assistant_post(service, base)
    _, _, slow = home_assistant_post(service, {**base, "effect_Rate_selected": "on",
                                               "effect_Rate_parameters": "durScale:2.0;"})
    ratio = decode_wav(slow).seconds / decode_wav(normal).seconds
    assert 1.7 < ratio < 2.3, ratio


def test_plain_text_catalogue(service):
    voices = httpx.get(service.url + "/voices").text.splitlines()
    assert "piper:en_US-joe-medium en_US unknown piper" in voices
    assert all(len(line.split()) == 4 for line in voices)
    locales = httpx.get(service.url + "/locales").text.splitlines()
    assert {"en_US", "de"} <= set(locales)
    assert httpx.get(service.url + "/version").text.startswith("Mary TTS server 5.2")


@pytest.mark.parametrize(("params", "code"), [
    ({"INPUT_TEXT": ""}, "empty_text"),
    ({"INPUT_TEXT": "Hi.", "OUTPUT_TYPE": "TEXT"}, "unsupported_output_type"),
    ({"INPUT_TEXT": "Hi.", "AUDIO": "MP3_FILE"}, "unknown_format"),
    ({"INPUT_TEXT": "Hi.", "effect_Volume_selected": "on", "effect_Volume_parameters": "amount:50;"},
     "invalid_effect"),
    ({"INPUT_TEXT": "Hi.", "effect_Volume_selected": "on", "effect_Volume_parameters": "loud"}, "invalid_effect"),
    ({"INPUT_TEXT": "<maryxml>Hi</maryxml>", "INPUT_TYPE": "RAWMARYXML"}, "unsupported_input_type"),
    ({"INPUT_TEXT": "Plain words.", "INPUT_TYPE": "SSML"}, "invalid_ssml"),
    ({"INPUT_TEXT": "<speak>Hi <break></speak>", "INPUT_TYPE": "SSML"}, "invalid_ssml"),
    ({"INPUT_TEXT": "Hi.", "effect_Rate_selected": "on", "effect_Rate_parameters": "durScale:0;"},
     "invalid_speed"),
    ({"INPUT_TEXT": "Hi.", "effect_Rate_selected": "on", "effect_Rate_parameters": "fast"}, "invalid_speed"),
])
def test_bad_mary_requests(service, params, code):
    status, headers, body = home_assistant_post(service, params)
    assert status == 400 and headers["content-type"] == "application/json"
    assert httpx.Response(400, content=body).json()["error"]["code"] == code


def test_json_body_is_not_a_form(service):
    resp = httpx.post(service.url + "/process", json={"INPUT_TEXT": "Hi."})
    assert resp.status_code == 415


@pytest.mark.parametrize("codec", ["WAVE_FILE", "AU_FILE", "AIFF_FILE"])
def test_the_real_speak2mary_client_with_every_codec_and_its_effects(service, codec):
    """Home Assistant's marytts platform calls speak2mary (the version it pins) exactly like this. Every codec
    it offers is a file strict readers accept; Rate and Volume apply; its other effects are accepted."""
    import io
    import uuid

    import numpy as np
    import soundfile
    from speak2mary import MaryTTS

    port = int(service.url.rsplit(":", 1)[1])
    mary = MaryTTS(host="127.0.0.1", port=port, codec=codec, locale="en_US", voice="cmu-slt-hsmm")
    text = f"The garage door is open, take {uuid.uuid4().hex[:4]}."

    def read(data: bytes):
        info = soundfile.info(io.BytesIO(data))
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
        assert info.format == {"WAVE_FILE": "WAV", "AU_FILE": "AU", "AIFF_FILE": "AIFF"}[codec]
        assert rate == 22050 and info.channels == 1
        assert abs(info.duration - len(samples) / rate) < 0.02 * info.duration  # the header tells the truth
        return samples

    plain = read(mary.speak(text))
    from tests.support import DecodedAudio

    assert_speech(DecodedAudio(22050, 1, plain), text, sample_rate=22050)
    everything = {name: default for name, default in MaryTTS.supported_effects().items()
                  if name not in ("Rate", "Volume")}
    louder = read(mary.speak(text, {"Volume": "amount:2.0;", **everything}))
    rms = float(np.sqrt(np.mean(plain.astype(np.float64) ** 2)))
    assert len(louder) == len(plain) and 1.6 * rms < float(np.sqrt(np.mean(louder.astype(np.float64) ** 2)))
    slower = read(mary.speak(text, {"Rate": "durScale:1.5;"}))
    assert 1.3 < len(slower) / len(plain) < 1.7
