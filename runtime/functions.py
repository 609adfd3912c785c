"""Declaring a function: ``@function(route=..., methods=..., ...)`` beside its handler.

A handler is ``async def handler(request, ctx) -> Response``. Options are checked when the module is
imported: an unknown option or a bad value is a ``FunctionDefinitionError`` naming the fix.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

AUTH_LEVELS = ("public",)  # "admin" and "key" arrive with the security issue
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
OPTIONS = {
    "route": "URL path, Starlette syntax (e.g. '/api/jobs/{id}')",
    "methods": "HTTP methods, default ['GET']",
    "name": "unique function name, default the handler's name",
    "auth": f"who may call it, one of {AUTH_LEVELS}",
    "timeout_s": "seconds before the request is answered 504, default 30",
    "max_body": "largest request body in bytes, default MAX_BODY_BYTES",
    "concurrency": "most requests in flight at once (0 = unlimited), default 0",
    "openapi": "its OpenAPI operation (dict: summary, parameters, requestBody, responses), or a function of the "
               "settings that returns one; False leaves it out",
}
SPEC_ATTR = "__ef_function__"

Handler = Callable[[Request, object], Awaitable[Response]]


class FunctionDefinitionError(ValueError):
    """A function module declares something the runtime cannot mount."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    route: str
    methods: tuple[str, ...]
    auth: str
    timeout_s: float
    max_body: int | None
    concurrency: int
    handler: Handler
    openapi: dict | Callable[[object], dict] | bool | None = None


def function(**options: object) -> Callable[[Handler], Handler]:
    """Declare the decorated coroutine as a function served at ``route``. See ``OPTIONS``."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise FunctionDefinitionError(f"unknown option(s) {unknown} in @function; known options are {known}")
    route = options.get("route")
    if not isinstance(route, str) or not route.startswith("/"):
        raise FunctionDefinitionError(f"@function needs route='/path', got {route!r}")
    methods = tuple(str(m).upper() for m in options.get("methods", ["GET"]))  # type: ignore[union-attr]
    bad = [m for m in methods if m not in HTTP_METHODS]
    if bad or not methods:
        raise FunctionDefinitionError(f"@function(route={route!r}) has bad methods {bad or methods}")
    auth = options.get("auth", "public")
    if auth not in AUTH_LEVELS:
        raise FunctionDefinitionError(f"@function(route={route!r}) auth must be one of {AUTH_LEVELS}, got {auth!r}")
    timeout_s = options.get("timeout_s", 30)
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise FunctionDefinitionError(f"@function(route={route!r}) timeout_s must be a positive number")
    max_body = options.get("max_body")
    if max_body is not None and (not isinstance(max_body, int) or max_body < 0):
        raise FunctionDefinitionError(f"@function(route={route!r}) max_body must be a byte count")
    concurrency = options.get("concurrency", 0)
    if not isinstance(concurrency, int) or concurrency < 0:
        raise FunctionDefinitionError(f"@function(route={route!r}) concurrency must be >= 0")

    openapi = options.get("openapi")
    if openapi is not None and openapi is not False and not isinstance(openapi, dict) and not callable(openapi):
        raise FunctionDefinitionError(f"@function(route={route!r}) openapi must be an operation dict, a function "
                                      "of the settings returning one, or False")

    def decorate(handler: Handler) -> Handler:
        if not inspect.iscoroutinefunction(handler):
            raise FunctionDefinitionError(f"{handler.__qualname__} must be 'async def handler(request, ctx)'")
        name = options.get("name") or handler.__name__
        spec = FunctionSpec(str(name), route, methods, str(auth), float(timeout_s), max_body, concurrency, handler,
                            openapi)
        specs = list(getattr(handler, SPEC_ATTR, ()))
        specs.append(spec)
        setattr(handler, SPEC_ATTR, specs)
        return handler

    return decorate
