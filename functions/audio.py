"""GET /audio/{key}.{ext} — a cached audio file: ETag, immutable caching, Range requests.

Keys are 64 hex characters (content addresses), so no path can escape the cache directory.
"""

import re

from runtime.errors import InvalidInput
from runtime.functions import function
from runtime.speech.audio import FORMATS

_NAME = re.compile(r"^([0-9a-f]{64})\.(" + "|".join(FORMATS) + r")$")


@function(route="/audio/{name}", methods=["GET"])
async def cached_audio(request, ctx):
    match = _NAME.match(request.path_params["name"])
    if match is None:
        raise InvalidInput(f"an audio name is <64 hex characters>.<{'|'.join(FORMATS)}>",
                           code="invalid_audio_key")
    return ctx.audio.response(request, match.group(1), match.group(2))
