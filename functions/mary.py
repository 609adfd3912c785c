"""MaryTTS compatibility (Home Assistant's ``marytts`` platform, OpenTTS and other MaryTTS clients):
``GET|POST /process``, and ``/voices``, ``/locales``, ``/version`` in MaryTTS's plain-text formats.

``/process`` takes its parameters from the query string or a form body. Home Assistant's client library
posts the form without a Content-Type header, so a body with none is read as a form too.
"""

from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from runtime.callers import caller_of
from runtime.errors import InvalidInput, UnsupportedMediaType
from runtime.functions import function
from runtime.openapi import audio_content, errors, text_content
from runtime.speech.audio import CONTENT_TYPES, decode_wav, encode
from runtime.speech.request import from_mary, mary_locale, mary_output
from runtime.speech.responses import audio_response, engine_headers

VERSION = "Mary TTS server 5.2 (compatible; ef speech functions)"


async def _params(request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("", "application/x-www-form-urlencoded", "text/plain"):
            raise UnsupportedMediaType("send MaryTTS parameters as a form (application/x-www-form-urlencoded) "
                                       f"or in the query string, not {ctype}")
        body = (await request.body()).decode("utf-8", errors="replace")
        for name, value in parse_qsl(body, keep_blank_values=True):
            if params.get(name, value) != value:
                raise InvalidInput(f"{name} is given both in the query string and in the form, with different "
                                   "values; give it once", code="conflicting_parameter")
            params[name] = value
    return params


def _openapi(settings) -> dict:
    fields = {
        "INPUT_TEXT": {"type": "string", "minLength": 1, "maxLength": settings.max_text_chars},
        "INPUT_TYPE": {"type": "string", "enum": ["TEXT", "SSML"], "default": "TEXT"},
        "OUTPUT_TYPE": {"type": "string", "enum": ["AUDIO"], "default": "AUDIO"},
        "AUDIO": {"type": "string", "enum": ["WAVE_FILE", "WAVE", "AU_FILE", "AU", "AIFF_FILE", "AIFF"],
                  "default": "WAVE_FILE"},
        "LOCALE": {"type": "string", "example": "en_US"},
        "VOICE": {"type": "string", "description": "a voice id; unknown MaryTTS voices fall back to LOCALE"},
        "effect_Rate_selected": {"type": "string", "example": "on"},
        "effect_Rate_parameters": {"type": "string", "example": "durScale:1.5;"},
        "effect_Volume_selected": {"type": "string", "example": "on"},
        "effect_Volume_parameters": {"type": "string", "example": "amount:2.0;",
                                     "description": "gain, at most 10; speak2mary's other effects are ignored"},
    }
    return {
        "summary": "MaryTTS /process: speech as WAV from query parameters or a form",
        "tags": ["MaryTTS"],
        "parameters": [{"name": name, "in": "query", "required": False, "schema": schema}
                       for name, schema in fields.items()],
        "requestBody": {"required": False, "content": {"application/x-www-form-urlencoded": {"schema": {
            "type": "object", "properties": fields}}}},
        "responses": {"200": audio_content("The audio (AUDIO: WAVE_FILE, AU_FILE, AIFF_FILE)", ("wav", "au", "aiff")),
                      **errors(400, 415, 429, 502, 503, 504)},
    }


@function(route="/process", methods=["GET", "POST"], timeout_s=3600, openapi=_openapi)
async def mary_process(request, ctx):
    params = await _params(request)
    req = from_mary(params, ctx.catalog, ctx.settings.max_text_chars)
    codec, volume = mary_output(params)
    audio = await ctx.speech.render(req, ctx.settings.request_timeout_s, caller_of(request))
    if codec == "wav" and volume == 1.0:
        return audio_response(request, ctx.audio, audio)  # the cached file itself (ETag, Range)
    data = await run_in_threadpool(_convert, ctx.speech.cache.path(audio.key, audio.format), codec, volume)
    return Response(data, media_type=CONTENT_TYPES[codec],
                    headers=engine_headers(audio.engine, audio.fallback, audio.cache_hit, audio.job_id))


def _convert(path, codec: str, volume: float) -> bytes:
    """The cached WAV as ``codec`` (AU, AIFF or WAV), ``volume`` times as loud."""
    pcm = decode_wav(path.read_bytes())
    return encode(pcm.louder(volume) if volume != 1.0 else pcm, codec)


@function(route="/voices", methods=["GET"], openapi={
    "summary": "MaryTTS voice list: one a line, <name> <locale> <gender> <type>", "tags": ["MaryTTS"],
    "responses": {"200": text_content("The voices")}})
async def mary_voices(request, ctx):
    # MaryTTS: one voice a line, "<name> <locale> <gender> <type>"
    lines = [f"{v.id} {mary_locale(v.language)} unknown {v.engine}" for v in ctx.catalog.all()]
    return PlainTextResponse("\n".join(lines) + "\n")


@function(route="/locales", methods=["GET"], openapi={
    "summary": "MaryTTS locale list, one a line", "tags": ["MaryTTS"],
    "responses": {"200": text_content("The locales")}})
async def mary_locales(request, ctx):
    locales = sorted({mary_locale(v.language) for v in ctx.catalog.all()})
    return PlainTextResponse("\n".join(locales) + "\n")


@function(route="/version", methods=["GET"], openapi={
    "summary": "MaryTTS version line", "tags": ["MaryTTS"], "responses": {"200": text_content("The version")}})
async def mary_version(request, ctx):
    return PlainTextResponse(VERSION + "\n")
