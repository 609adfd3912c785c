"""The layers that give ``@function`` options their meaning. Each layer declares the options it owns
(name → description), checks a function's values when the registry loads it, and wraps the function's call
with what the option does. The registry refuses options no layer claims.

Order, outermost first: auth (who may call) → rate_limit (how often) → max_body → concurrency →
timeout_s → the handler; ``openapi`` only describes.
"""

from __future__ import annotations

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
    from runtime.options.docs import Documented
    from runtime.options.timeout import TimeLimit
    from runtime.security import Security
    from runtime.security.auth import AuthLayer
    from runtime.security.ratelimit import RateLimitLayer

    security = security or Security(settings)
    return [AuthLayer(security), RateLimitLayer(settings), BodyLimit(settings.max_body_bytes), Concurrency(),
            TimeLimit(), Documented()]
