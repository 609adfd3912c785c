"""``timeout_s``: seconds before a request is answered 504 ``timeout`` (default 30), counted until its whole
response has been sent: a streamed body still going at the deadline is cut off (its headers are out, so the
stream ends without its last chunk and the client sees it incomplete). What the request started (a synthesis
job) goes on."""

from __future__ import annotations

import asyncio

from runtime.errors import Timeout
from runtime.options import Call, Layer, Sending, bad, streamed


class TimeLimit(Layer):
    options = {"timeout_s": "seconds before the request is answered 504 (streamed bodies included), default 30"}

    def check(self, spec) -> None:
        value = spec.option("timeout_s", 30)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise bad(spec, "timeout_s", "must be a positive number")

    def wrap(self, spec, call: Call) -> Call:
        seconds = float(spec.option("timeout_s", 30))  # type: ignore[arg-type]

        def expired() -> Timeout:
            return Timeout(f"{spec.name} did not answer within {seconds:g}s")

        async def timed(request):
            deadline = asyncio.get_running_loop().time() + seconds
            # asyncio.timeout, not wait_for: no extra task per request (it matters on the cached-audio path)
            try:
                async with asyncio.timeout_at(deadline):
                    response = await call(request)
            except TimeoutError:
                raise expired() from None
            return Sending(response, None, deadline, expired) if streamed(response) else response

        return timed
