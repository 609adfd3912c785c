"""MaryTTS compatibility (Home Assistant's ``marytts`` platform, OpenTTS and other MaryTTS clients):
``GET|POST /process``, and ``/voices``, ``/locales``, ``/version`` in MaryTTS's plain-text formats.

``/process`` takes its parameters from the query string or a form body. Home Assistant's client library
posts the form without a Content-Type header, so a body with none is read as a form too.
"""

from urllib.parse import parse_qsl

from starlette.responses import PlainTextResponse

from runtime.errors import UnsupportedMediaType
from runtime.functions import function
from runtime.speech.request import from_mary, mary_locale
from runtime.speech.responses import audio_response

VERSION = "Mary TTS server 5.2 (compatible; ef speech functions)"


async def _params(request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("", "application/x-www-form-urlencoded", "text/plain"):
            raise UnsupportedMediaType("send MaryTTS parameters as a form (application/x-www-form-urlencoded) "
                                       f"or in the query string, not {ctype}")
        body = (await request.body()).decode("utf-8", errors="replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


@function(route="/process", methods=["GET", "POST"], timeout_s=3600)
async def mary_process(request, ctx):
    req = from_mary(await _params(request), ctx.catalog, ctx.settings.max_text_chars)
    audio = await ctx.speech.render(req, ctx.settings.request_timeout_s)
    return audio_response(request, ctx.audio, audio)


@function(route="/voices", methods=["GET"])
async def mary_voices(request, ctx):
    # MaryTTS: one voice a line, "<name> <locale> <gender> <type>"
    lines = [f"{v.id} {mary_locale(v.language)} unknown {v.engine}" for v in ctx.catalog.all()]
    return PlainTextResponse("\n".join(lines) + "\n")


@function(route="/locales", methods=["GET"])
async def mary_locales(request, ctx):
    locales = sorted({mary_locale(v.language) for v in ctx.catalog.all()})
    return PlainTextResponse("\n".join(locales) + "\n")


@function(route="/version", methods=["GET"])
async def mary_version(request, ctx):
    return PlainTextResponse(VERSION + "\n")
