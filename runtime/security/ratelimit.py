"""The ``rate_limit`` option's layer: requests per caller per function, with the ``limits`` library
(sliding-window counters; in memory in embedded mode, in Redis when ``REDIS_URL`` is set, so every web
process counts together).

A function's limit, first found: ``RATE_LIMITS=<function>=…``, its own ``rate_limit`` option,
``RATE_LIMITS=default=…``; ``rate_limit=False`` exempts a function from the default (health probes).
The caller is ``key:<id>`` for a recognised API key, else ``ip:<client address>`` (``runtime.callers``).
Answers carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds); past the
limit, 429 ``rate_limited`` with ``Retry-After``.
"""

from __future__ import annotations

import math
import time

from limits import parse_many, storage, strategies
from starlette.concurrency import run_in_threadpool

from runtime.callers import caller_of
from runtime.errors import ApiError
from runtime.options import Call, Layer, bad


class RateLimitLayer(Layer):
    options = {"rate_limit": "requests per caller, e.g. '60/minute' or '10/second;600/hour' (limits' notation); "
                             "RATE_LIMITS overrides it by function name; False: exempt from RATE_LIMITS' default"}

    def __init__(self, settings) -> None:
        self.overrides = dict(settings.rate_limits)
        self.remote = bool(settings.redis_url)
        self._limiter: strategies.RateLimiter | None = None
        self._url = settings.redis_url or "memory://"

    def check(self, spec) -> None:
        value = spec.option("rate_limit")
        if value is None or value is False:
            return
        try:
            if not isinstance(value, str) or not parse_many(value):
                raise ValueError
        except ValueError:
            raise bad(spec, "rate_limit", "must be a limit such as '60/minute'") from None

    def limit_of(self, spec) -> str | None:
        own = spec.option("rate_limit")
        return self.overrides.get(spec.name) or own or (None if own is False else self.overrides.get("default"))

    def admits_anyone(self, spec) -> bool:
        return self.limit_of(spec) is None

    @property
    def limiter(self) -> strategies.RateLimiter:
        if self._limiter is None:
            self._limiter = strategies.SlidingWindowCounterRateLimiter(storage.storage_from_string(self._url))
        return self._limiter

    def wrap(self, spec, call: Call) -> Call:
        text = self.limit_of(spec)
        if not text:
            return call
        items = parse_many(text)

        async def limited(request):
            caller = caller_of(request)
            check = self._hit
            headers = await run_in_threadpool(check, items, caller, spec.name) if self.remote else \
                check(items, caller, spec.name)
            if headers.pop("refused", None):
                raise ApiError(f"{caller} made too many requests to {spec.name} (limit {text}); retry in "
                               f"{headers['Retry-After']}s", code="rate_limited", status=429, headers=headers)
            response = await call(request)
            for name, value in headers.items():
                response.headers.setdefault(name, value)
            return response

        return limited

    def _hit(self, items, caller: str, name: str) -> dict[str, str]:
        """Count the request against every limit; the headers describe the tightest one."""
        refused = False
        tightest = None
        for item in items:
            if not self.limiter.hit(item, caller, name):
                refused = True
            stats = self.limiter.get_window_stats(item, caller, name)
            if tightest is None or stats.remaining < tightest[1].remaining:
                tightest = (item, stats)
        item, stats = tightest  # type: ignore[misc]
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        headers = {"RateLimit-Limit": str(item.amount), "RateLimit-Remaining": str(stats.remaining),
                   "RateLimit-Reset": str(reset)}
        if refused:
            headers.update({"Retry-After": str(reset), "refused": "1"})
        return headers
