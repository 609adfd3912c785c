"""GET /api/voices — every voice of every engine: id, engine, name, language. Filters: ?engine=, ?language=
(prefix match, so ``en`` finds ``en-US`` and ``en-gb``)."""

from runtime.functions import function
from runtime.http import json_response
from runtime.openapi import json_content

OPENAPI = {
    "summary": "Every voice of every engine",
    "tags": ["Voices"],
    "parameters": [
        {"name": "engine", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "only this engine's voices"},
        {"name": "language", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "language prefix: en finds en-US and en-gb"},
    ],
    "responses": {"200": json_content({
        "type": "object", "required": ["default", "voices"],
        "properties": {"default": {"type": "string"},
                       "voices": {"type": "array", "items": {"$ref": "#/components/schemas/Voice"}}}},
        "The voices")},
}


@function(route="/api/voices", methods=["GET"], openapi=OPENAPI)
async def voices(request, ctx):
    engine = request.query_params.get("engine")
    language = (request.query_params.get("language") or "").lower()
    found = [v for v in ctx.catalog.all()
             if (not engine or v.engine == engine) and v.language.lower().startswith(language)]
    return json_response({"default": ctx.catalog.default.id, "voices": [v.as_json() for v in found]})
