"""OpenAI-style catalogue: ``GET /v1/models`` (the accepted ``model`` values) and ``GET /v1/audio/voices``
(a de-facto extension other local servers offer, in its current shape ``{"voices": [{"id", "name", …}]}``,
which Home Assistant's OpenAI TTS integration reads for its voice picker; plus the default voice and the
OpenAI name mapping)."""

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import json_content
from runtime.speech.request import OPENAI_MODELS
from runtime.speech.voices import labelled

MODELS = {
    "summary": "The accepted model values (OpenAI's TTS models and the engine names)",
    "tags": ["OpenAI"],
    "responses": {"200": json_content({
        "type": "object", "required": ["object", "data"],
        "properties": {"object": {"type": "string", "enum": ["list"]}, "data": {"type": "array", "items": {
            "type": "object", "required": ["id", "object"],
            "properties": {"id": {"type": "string"}, "object": {"type": "string", "enum": ["model"]},
                           "created": {"type": "integer"}, "owned_by": {"type": "string"}}}}}},
        "The models")},
}
VOICES = {
    "summary": "Voice ids, OpenAI voice names and the voices they map to, the default",
    "tags": ["OpenAI"],
    "responses": {"200": json_content({
        "type": "object", "required": ["default", "voices", "aliases"],
        "properties": {"default": {"type": "string"}, "voices": {"type": "array", "items": {
            "type": "object", "required": ["id", "name"], "properties": {
                "id": {"type": "string", "example": "piper:en_US-joe-medium"},
                "name": {"type": "string", "example": "Joe (English, US) — Piper"},
                "language": {"type": "string"}, "engine": {"type": "string"}}}},
                       "aliases": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "The voice catalogue")},
}


@function(route="/v1/models", methods=["GET"], openapi=MODELS)
async def openai_models(request, ctx):
    models = [*OPENAI_MODELS, *ctx.catalog.engines]
    return json_response({"object": "list", "data": [
        {"id": name, "object": "model", "created": 0, "owned_by": "ef-speech-functions"} for name in models]})


@function(route="/v1/audio/voices", methods=["GET"], openapi=VOICES)
async def openai_voices(request, ctx):
    catalog = ctx.catalog
    aliases = {alias: catalog.resolve(alias).id for alias in sorted(catalog.aliases)}
    voices = [{"id": v.id, "name": labelled(v),
               "language": v.language, "engine": v.engine} for v in catalog.all()]
    return json_response({"default": catalog.default.id, "voices": voices, "aliases": aliases})
