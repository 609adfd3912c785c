"""The ceiling for any Python app on this server stack: a bare ASGI callable returning one file's bytes
from memory under the same uvicorn (httptools + uvloop). Used as a reference by ``bench.serve_cached``.

    BENCH_FILE=/path/to/file.wav .venv/bin/uvicorn bench.bare_asgi:app --port 8099
"""

import os

_DATA = open(os.environ["BENCH_FILE"], "rb").read()  # noqa: SIM115 - read once at import
_HEADERS = [(b"content-type", b"audio/wav"), (b"content-length", str(len(_DATA)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _DATA})
