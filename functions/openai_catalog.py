"""OpenAI-style catalogue: ``GET /v1/models`` (the accepted ``model`` values) and ``GET /v1/audio/voices``
(a de-facto extension other local servers offer: voice ids, the OpenAI name mapping, the default)."""

from runtime.functions import function
from runtime.http import json_response
from runtime.speech.request import OPENAI_MODELS


@function(route="/v1/models", methods=["GET"])
async def openai_models(request, ctx):
    models = [*OPENAI_MODELS, *ctx.catalog.engines]
    return json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "ef-speech-functions"} for name in models]})


@function(route="/v1/audio/voices", methods=["GET"])
async def openai_voices(request, ctx):
    catalog = ctx.catalog
    aliases = {alias: catalog.resolve(alias).id for alias in sorted(catalog.aliases)}
    return json_response({"default": catalog.default.id, "voices": [v.id for v in catalog.all()],
                          "aliases": aliases})
