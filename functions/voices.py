"""GET /api/voices — every voice of every engine: id, engine, name, language. Filters: ?engine=, ?language=
(prefix match, so ``en`` finds ``en-US`` and ``en-gb``)."""

from runtime.functions import function
from runtime.http import json_response


@function(route="/api/voices", methods=["GET"])
async def voices(request, ctx):
    engine = request.query_params.get("engine")
    language = (request.query_params.get("language") or "").lower()
    found = [v for v in ctx.catalog.all()
             if (not engine or v.engine == engine) and v.language.lower().startswith(language)]
    return json_response({"default": ctx.catalog.default.id, "voices": [v.as_json() for v in found]})
