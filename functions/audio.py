"""GET /audio/{key}.{ext} — a cached audio file: ETag, immutable caching, Range requests.

Keys are 64 hex characters (content addresses), so no path can escape the cache directory.
"""

import re

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.openapi import audio_content, error, errors
from runtime.speech.audio import FORMATS

_NAME = re.compile(r"^([0-9a-f]{64})\.(" + "|".join(FORMATS) + r")$")


OPENAPI = {
    "summary": "A cached audio file (ETag, immutable, Range)",
    "tags": ["Audio"],
    "parameters": [{"name": "name", "in": "path", "required": True,
                    "description": "<64 hex characters>.<format>, as in a job's audio_url",
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}\\.(" + "|".join(FORMATS) + ")$"}}],
    "responses": {
        "200": audio_content("The whole file"),
        "206": audio_content("The requested byte range"),
        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
        "416": error(416, "The range is outside the file (`range_not_satisfiable`)"),
        **errors(400, 404),
    },
}


@function(route="/audio/{name}", methods=["GET"], openapi=OPENAPI)
async def cached_audio(request, ctx):
    match = _NAME.match(request.path_params["name"])
    if match is None:
        raise InvalidInput(f"an audio name is <64 hex characters>.<{'|'.join(FORMATS)}>",
                           code="invalid_audio_key")
    return ctx.audio.response(request, match.group(1), match.group(2))
