"""``concurrency``: the most requests of a function in flight at once in this process (0: unlimited), like
OpenFaaS's ``max_inflight``; past it, 429 ``too_many_requests`` with ``Retry-After: 1`` at once, never a
queue. A request holds its slot until its whole response has been sent, streamed bodies included."""

from __future__ import annotations

from runtime.errors import ApiError
from runtime.options import Call, Layer, Sending, bad

TOO_MANY = "too_many_requests"


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
        in_flight = 0  # one event loop per process: a plain counter, no lock

        def release(_error) -> None:
            nonlocal in_flight
            in_flight -= 1

        async def bounded(request):
            nonlocal in_flight
            if in_flight >= most:
                raise ApiError(f"{spec.name} is at its limit of {most} requests in flight; retry shortly",
                               code=TOO_MANY, status=429, headers={"Retry-After": "1"})
            in_flight += 1
            try:
                response = await call(request)
            except BaseException:
                in_flight -= 1
                raise
            return Sending(response, release)

        return bounded
