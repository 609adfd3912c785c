"""POST /v1/audio/speech — speech in OpenAI's request shape (model, input, voice, response_format, speed,
stream_format).

``stream_format: "audio"`` (the default) sends the audio bytes as they are produced: a text of several
sentences starts playing after its first sentence is synthesised (chunked transfer); a cache hit or a
one-sentence text comes as a whole file (ETag, Content-Length). WAV and FLAC stream only when the request
names a ``stream_format``: otherwise they come whole, with lengths strict readers accept (a streamed WAV
carries OpenAI's 0xFFFFFFFF sizes, a streamed FLAC no total length). ``"sse"`` sends server-sent events:
``speech.audio.delta`` with base64 audio, then ``speech.audio.done``. Unknown optional fields are ignored,
as OpenAI clients send them. Headers: ``X-TTS-Engine`` (who spoke), ``X-TTS-Fallback``, ``X-Cache``
(hit|miss), ``X-Job-ID``.
"""

from runtime.callers import caller_of
from runtime.functions import function
from runtime.http import read_json
from runtime.openapi import audio_content, errors
from runtime.speech.audio import FORMATS
from runtime.speech.request import from_openai, stream_format
from runtime.speech.responses import audio_response
from runtime.speech.service import Rendered
from runtime.speech.streaming import live_response, open_stream, sse_file_response

WHOLE_UNLESS_ASKED = ("wav", "flac")  # streamed only when the request names a stream_format


def _openapi(settings) -> dict:
    answer = audio_content("The audio: a whole file (cache hit, one sentence) or streamed as it is produced")
    # One server-sent event (OpenAPI before 3.2 describes each event): its data is one JSON object,
    # {"type": "speech.audio.delta", "audio": <base64>}, then {"type": "speech.audio.done", "usage": {…}}
    # (or {"type": "error", "error": {code, message}} if synthesis fails after the first event).
    answer["content"]["text/event-stream"] = {"schema": {
        "type": "object", "required": ["data"],
        "properties": {"event": {"type": "string"}, "data": {"type": "string", "example": (
            '{"type":"speech.audio.done","usage":{"input_tokens":5,"output_tokens":0,"total_tokens":5}}')}}}}
    return {
        "summary": "Speech from text, in OpenAI's shape",
        "tags": ["OpenAI"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["input"],
            "properties": {
                "model": {"type": "string", "nullable": True, "example": "tts-1",
                          "description": "tts-1, tts-1-hd, gpt-4o-mini-tts, or an engine name (GET /v1/models)"},
                "input": {"type": "string", "minLength": 1, "maxLength": settings.max_text_chars,
                          "description": "text, or SSML (<speak>…</speak>)",
                          "example": "Hello from the speech server."},
                "voice": {"type": "string", "nullable": True, "example": "alloy",
                          "description": "a voice id (GET /v1/audio/voices) or an OpenAI voice name"},
                "response_format": {"type": "string", "enum": [*FORMATS, None], "nullable": True, "default": "mp3"},
                "speed": {"type": "number", "minimum": 0.25, "maximum": 4.0, "default": 1.0, "nullable": True},
                "stream_format": {"type": "string", "enum": ["audio", "sse"], "default": "audio"},
                "instructions": {"type": "string", "description": "accepted; no local engine uses it"},
            }}}}},
        "responses": {"200": answer, **errors(429, 502, 503)},
    }


@function(route="/v1/audio/speech", methods=["POST"], timeout_s=3600, openapi=_openapi)
async def openai_speech(request, ctx):
    body = await read_json(request)
    req = from_openai(body, ctx.catalog, ctx.settings.max_text_chars)
    sse = stream_format(body) == "sse"
    if req.format in WHOLE_UNLESS_ASKED and body.get("stream_format") is None:
        # One whole file with true lengths (a streamed WAV cannot know them: strict readers see 27 hours)
        audio = await ctx.speech.render(req, ctx.settings.request_timeout_s, caller_of(request))
        return audio_response(request, ctx.audio, audio)
    audio = await open_stream(ctx.speech, req, ctx.settings.request_timeout_s, caller_of(request))
    if not isinstance(audio, Rendered):
        return live_response(audio, req, sse)
    if sse:
        return sse_file_response(ctx.speech, audio, len(req.text))
    return audio_response(request, ctx.audio, audio)
