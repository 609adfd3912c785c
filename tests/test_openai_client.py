"""The official openai package, pointed at the real service, creates speech."""

from __future__ import annotations

import uuid

import pytest
from openai import OpenAI

from tests.support import assert_speech, decode_wav, decode_with_ffmpeg


@pytest.fixture()
def openai_client(service):
    return OpenAI(base_url=service.url + "/v1", api_key="not-needed-locally", max_retries=0, timeout=120)


def test_openai_create_wav(openai_client):
    text = f"Hello from the official client, take {uuid.uuid4().hex[:5]}."
    result = openai_client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav")
    assert_speech(decode_wav(result.content), text, sample_rate=22050)


def test_openai_create_mp3_default_with_extras(openai_client):
    text = f"The default format is mp3, take {uuid.uuid4().hex[:5]}."
    result = openai_client.audio.speech.create(model="tts-1-hd", voice="nova", input=text, speed=1.25,
                                               instructions="Cheerful.")
    assert_speech(decode_with_ffmpeg(result.content), text, sample_rate=22050)


def test_openai_streaming_helper(openai_client, tmp_path):
    text = f"Streaming to a file works too, take {uuid.uuid4().hex[:5]}."
    target = tmp_path / "out.wav"
    with openai_client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="echo", input=text, response_format="wav") as response:
        response.stream_to_file(target)
    assert_speech(decode_wav(target.read_bytes()), text, sample_rate=22050)


def test_openai_error_surfaces_as_bad_request(openai_client):
    import openai

    with pytest.raises(openai.BadRequestError) as err:
        openai_client.audio.speech.create(model="tts-1", voice="alloy", input="", response_format="wav")
    assert err.value.status_code == 400
    assert err.value.body["code"] == "empty_text"
