"""The SSML subset: parsed safely (no entity expansion, no external entities), rendered as audio."""

from __future__ import annotations

import time

import httpx
import pytest

from runtime.errors import InvalidInput
from runtime.speech.ssml import Segment, parse
from tests.support import assert_speech, decode_wav


def test_supported_elements():
    segments = parse(
        '<speak xmlns="http://www.w3.org/2001/10/synthesis" version="1.0">'
        '<p><s>Hello <break time="500ms"/> world.</s></p>'
        '<prosody rate="x-slow">Slowly now.</prosody> <prosody rate="150%">Faster.</prosody>'
        '<say-as interpret-as="characters">ABC</say-as> <say-as interpret-as="digits">2024</say-as> '
        '<sub alias="World Wide Web Consortium">W3C</sub> <emphasis>read as text</emphasis>'
        '<break strength="strong"/><audio src="http://example.invalid/x.wav">fallback words</audio></speak>')
    assert segments == [
        Segment("Hello"), Segment(pause_s=0.5), Segment("world."), Segment(pause_s=0.55),
        Segment("Slowly now.", rate=0.5), Segment("Faster.", rate=1.5),
        Segment("A B C 2 0 2 4 World Wide Web Consortium read as text"), Segment(pause_s=0.7),
        Segment("fallback words"),
    ]


@pytest.mark.parametrize(("ssml", "message"), [
    ("<speak>Hello <break></speak>", "line 1, column"),
    ("<speak>unclosed", "line 1"),
    ("<voice>Hi</voice>", "root element must be <speak>"),
    ('<speak><break time="soon"/>x</speak>', "break time"),
    ('<speak><prosody rate="warp">x</prosody></speak>', "prosody rate"),
])
def test_malformed_ssml_names_the_problem(ssml, message):
    with pytest.raises(InvalidInput, match=message) as err:
        parse(ssml)
    assert err.value.code == "invalid_ssml"


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + ']><speak>&lol9;</speak>')
XXE = '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><speak>&xxe;</speak>'


@pytest.mark.parametrize("attack", [BILLION_LAUGHS, XXE])
def test_entity_attacks_are_refused_not_evaluated(attack):
    start = time.perf_counter()
    with pytest.raises(InvalidInput, match="DTDs and entity declarations are not allowed"):
        parse(attack)
    assert time.perf_counter() - start < 0.5


def speak(service, text, **extra):
    return httpx.post(service.url + "/v1/audio/speech", timeout=120,
                      json={"input": text, "voice": "espeak:en-us", "response_format": "wav", **extra})


def test_breaks_and_prosody_change_the_audio(service):
    plain = decode_wav(speak(service, "<speak>First part. Second part.</speak>").content)
    paused = decode_wav(speak(service, '<speak>First part. <break time="2s"/> Second part.</speak>').content)
    assert 1.8 < paused.seconds - plain.seconds < 2.3, (plain.seconds, paused.seconds)
    slow = decode_wav(speak(service, '<speak><prosody rate="x-slow">First part. Second part.</prosody></speak>')
                      .content)
    assert slow.seconds > plain.seconds * 1.5
    assert_speech(slow, "First part. Second part.")


@pytest.mark.parametrize("attack", [BILLION_LAUGHS, XXE, "<speak>Hi <break></speak>"])
def test_bad_ssml_over_http_is_a_400_and_caches_nothing(service, attack):
    with service.db() as conn:
        before = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    resp = speak(service, attack)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_ssml"
    assert "root:" not in resp.text
    with service.db() as conn:
        assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == before


def test_ssml_without_words_is_a_short_silence(service):
    """Leading and trailing breaks are dropped (as around words), so only breaks leave nothing to speak."""
    resp = speak(service, '<speak><break time="1s"/></speak>')
    assert resp.status_code == 200, resp.text
    audio = decode_wav(resp.content)
    assert 0.05 < audio.seconds < 0.5 and audio.rms == 0


def test_ssml_through_marytts_and_jobs(service):
    resp = httpx.post(service.url + "/process", timeout=120, data={
        "INPUT_TEXT": '<speak>Door <say-as interpret-as="digits">42</say-as> is open.</speak>',
        "INPUT_TYPE": "SSML", "OUTPUT_TYPE": "AUDIO", "AUDIO": "WAVE_FILE", "LOCALE": "en_US"})
    assert resp.status_code == 200, resp.text
    assert_speech(decode_wav(resp.content), "Door four two is open.", sample_rate=22050)
    job = httpx.post(service.url + "/api/synthesize?wait=60", timeout=120,
                     json={"text": "<speak><s>One.</s><s>Two.</s></speak>"}).json()
    assert job["status"] == "succeeded" and job["progress"]["chunks_total"] == 2
