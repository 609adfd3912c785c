"""``concurrency``: the most requests of a function in flight at once in this process (0: unlimited);
past it, 429 ``too_many_requests`` with ``Retry-After: 1`` at once, never a queue."""

from __future__ import annotations

import asyncio

from runtime.errors import ApiError
from runtime.options import Call, Layer, bad


class Concurrency(Layer):
    options = {"concurrency": "most requests in flight at once (0 = unlimited), default 0"}

    def check(self, spec) -> None:
        value = spec.option("concurrency", 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(spec, "concurrency", "must be >= 0")

    def wrap(self, spec, call: Call) -> Call:
        most = spec.option("concurrency", 0)
        if not most:
            return call
        semaphore = asyncio.Semaphore(most)

        async def bounded(request):
            if semaphore.locked():
                raise ApiError(f"{spec.name} is at its limit of {most} requests in flight; retry shortly",
                               code="too_many_requests", status=429, headers={"Retry-After": "1"})
            async with semaphore:
                return await call(request)

        return bounded
