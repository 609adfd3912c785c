"""POST /v1/audio/speech — speech in OpenAI's request shape (model, input, voice, response_format, speed).

Answers with the audio bytes. Unknown optional fields are ignored, as OpenAI clients send them.
Headers: ``X-TTS-Engine`` (who spoke), ``X-TTS-Fallback``, ``X-Cache`` (hit|miss), ``ETag``.
"""

from runtime.functions import function
from runtime.http import read_json
from runtime.speech.request import from_openai
from runtime.speech.responses import audio_response


@function(route="/v1/audio/speech", methods=["POST"], timeout_s=3600)
async def openai_speech(request, ctx):
    req = from_openai(await read_json(request), ctx.catalog, ctx.settings.max_text_chars)
    audio = await ctx.speech.render(req, ctx.settings.request_timeout_s)
    return audio_response(request, ctx.audio, audio)
