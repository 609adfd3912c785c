"""The layers that give ``@function`` options their meaning. Each layer declares the options it owns
(name → description), checks a function's values when the registry loads it, and wraps the function's call
with what the option does. The registry refuses options no layer claims.

Order, outermost first: auth (who may call) → rate_limit (how often) → max_body → concurrency →
timeout_s → config → the handler; ``openapi`` and ``self_test`` only describe and check.

A layer whose option must hold for the whole response (``concurrency``, ``timeout_s``) returns the handler's
response wrapped in ``Sending``: the router sends every response by calling it, so the wrapper sees the body
go out, streamed bodies included.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from runtime.functions import FunctionDefinitionError, FunctionSpec

Call = Callable[[Request], Awaitable[Response]]


class Layer:
    options: dict[str, str] = {}

    def check(self, spec: FunctionSpec) -> None:
        """Raise ``FunctionDefinitionError`` when ``spec`` gives one of this layer's options a bad value."""

    def wrap(self, spec: FunctionSpec, call: Call) -> Call:
        return call

    def admits_anyone(self, spec: FunctionSpec) -> bool:
        """True when this layer refuses no caller of ``spec`` (the edge micro-cache may answer for it)."""
        return True


def bad(spec: FunctionSpec, option: str, what: str) -> FunctionDefinitionError:
    return FunctionDefinitionError(f"@function(route={spec.route!r}) {option} {what}, got {spec.option(option)!r}")


def default_layers(settings, security=None) -> list[Layer]:
    """Every layer, built from the settings (``security``: the process's ``runtime.security.Security``;
    without it the auth and rate-limit layers are built with their own)."""
    from runtime.options.body import BodyLimit
    from runtime.options.concurrency import Concurrency
    from runtime.options.config import Config, SelfTest
    from runtime.options.docs import Documented
    from runtime.options.timeout import TimeLimit
    from runtime.security import Security
    from runtime.security.auth import AuthLayer
    from runtime.security.ratelimit import RateLimitLayer

    security = security or Security(settings)
    return [AuthLayer(security), RateLimitLayer(settings), BodyLimit(settings.max_body_bytes), Concurrency(),
            TimeLimit(), Config(), Documented(), SelfTest()]


def streamed(response: Response) -> bool:
    """True for a response whose body is produced while it is sent (``StreamingResponse``)."""
    return hasattr(response, "body_iterator")


class Sending:
    """A response whose sending is watched: ``finish(error)`` is called once, when the body has gone out
    (``error`` None) or sending failed; with ``deadline`` (the event loop's clock), sending past it is cut off
    with ``on_timeout()`` (an ``ApiError``: the edge answers it, or ends a stream whose headers are out).
    Everything else (status, headers, body) is the wrapped response's."""

    __slots__ = ("_deadline", "_finish", "_on_timeout", "_response")

    def __init__(self, response: Response, finish: Callable[[BaseException | None], None] | None = None,
                 deadline: float | None = None, on_timeout: Callable[[], Exception] | None = None) -> None:
        self._response = response
        self._finish = finish
        self._deadline = deadline
        self._on_timeout = on_timeout

    def __getattr__(self, name: str):
        return getattr(self._response, name)

    def _done(self, error: BaseException | None) -> None:
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(error)

    async def __call__(self, scope, receive, send) -> None:
        error: BaseException | None = None
        try:
            if self._deadline is None:
                await self._response(scope, receive, send)
            else:
                try:
                    async with asyncio.timeout_at(self._deadline):
                        await self._response(scope, receive, send)
                except TimeoutError:
                    raise self._on_timeout() from None
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._done(error)

    def __del__(self) -> None:
        # never sent (the request was abandoned between the handler and the router): still release
        self._done(None)
