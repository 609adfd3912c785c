"""``timeout_s``: seconds before a request is answered 504 ``timeout`` (default 30); what it started
(a synthesis job) goes on."""

from __future__ import annotations

import asyncio

from runtime.errors import Timeout
from runtime.options import Call, Layer, bad


class TimeLimit(Layer):
    options = {"timeout_s": "seconds before the request is answered 504, default 30"}

    def check(self, spec) -> None:
        value = spec.option("timeout_s", 30)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise bad(spec, "timeout_s", "must be a positive number")

    def wrap(self, spec, call: Call) -> Call:
        seconds = float(spec.option("timeout_s", 30))  # type: ignore[arg-type]

        async def timed(request):
            # asyncio.timeout, not wait_for: no extra task per request (it matters on the cached-audio path)
            try:
                async with asyncio.timeout(seconds):
                    return await call(request)
            except TimeoutError:
                raise Timeout(f"{spec.name} did not answer within {seconds:g}s") from None

        return timed
