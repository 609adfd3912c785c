"""``max_body``: the largest request body a function accepts, in bytes (default ``MAX_BODY_BYTES``);
413 ``body_too_large`` by the declared length, or as soon as the streamed body passes it."""

from __future__ import annotations

from starlette.requests import Request

from runtime.errors import PayloadTooLarge
from runtime.options import Call, Layer, bad


class BodyLimit(Layer):
    options = {"max_body": "largest request body in bytes, default MAX_BODY_BYTES"}

    def __init__(self, default_max_body: int) -> None:
        self.default = default_max_body

    def check(self, spec) -> None:
        value = spec.option("max_body")
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise bad(spec, "max_body", "must be a byte count")

    def wrap(self, spec, call: Call) -> Call:
        limit = spec.option("max_body")
        limit = self.default if limit is None else limit
        if set(spec.methods) <= {"GET", "HEAD"}:
            return call

        async def limited(request: Request):
            if request.method not in ("GET", "HEAD"):
                declared = request.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise PayloadTooLarge(
                        f"the request body is {declared} bytes; this function accepts at most {limit}")
                request = Request(request.scope, _limited_receive(request.receive, limit))
            return await call(request)

        return limited


def _limited_receive(receive, limit: int):
    received = 0

    async def wrapped():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"the request body exceeds this function's limit of {limit} bytes")
        return message

    return wrapped
