"""The ceiling for any Python app on this server stack: a bare ASGI callable returning one file's bytes
from memory under the same uvicorn (httptools + uvloop). Used as a reference by ``bench.serve_cached``.

    BENCH_FILE=/path/to/file.wav .venv/bin/uvicorn bench.bare_asgi:app --port 8099
"""

import os

_DATA = open(os.environ["BENCH_FILE"], "rb").read()  # noqa: SIM115 - read once at import
# The same header set the service sends for a cached file, so the comparison measures code, not headers
_HEADERS = [(b"content-type", b"audio/wav"), (b"content-length", str(len(_DATA)).encode()),
            (b"etag", b'"0000000000000000000000000000000000000000000000000000000000000000.wav"'),
            (b"cache-control", b"public, max-age=31536000, immutable"), (b"accept-ranges", b"bytes"),
            (b"x-request-id", b"0123456789abcdef")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _DATA})
