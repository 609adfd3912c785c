"""Declaring a function: ``@function(route=..., methods=..., ...)`` beside its handler.

A handler is ``async def handler(request, ctx) -> Response``. The decorator checks the options it owns
(``route``, ``methods``, ``name``); every other option belongs to a layer (``runtime.options``) that
declares it and checks its value, the way Dramatiq's middleware declares ``actor_options``. The registry
refuses an option that no layer claims, naming the options that exist.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from starlette.requests import Request
from starlette.responses import Response

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORE_OPTIONS = {
    "route": "URL path, Starlette syntax (e.g. '/api/jobs/{id}')",
    "methods": "HTTP methods, default ['GET']",
    "name": "unique function name, default the handler's name",
}
SPEC_ATTR = "__ef_function__"

Handler = Callable[[Request, object], Awaitable[Response]]


class FunctionDefinitionError(ValueError):
    """A function module declares something the runtime cannot mount."""


@dataclass(frozen=True, eq=False)
class FunctionSpec:
    name: str
    route: str
    methods: tuple[str, ...]
    handler: Handler
    options: Mapping[str, object]  # every option but the core ones, as declared; checked by their layers
    version: int = 1  # the module's version this spec belongs to (runtime.deploy)

    def option(self, name: str, default: object = None) -> object:
        return self.options.get(name, default)

    @property
    def openapi(self) -> dict | Callable[[object], dict] | bool | None:
        return self.options.get("openapi")  # type: ignore[return-value]

    @property
    def auth(self) -> str:
        return str(self.options.get("auth", "public"))


def function(**options: object) -> Callable[[Handler], Handler]:
    """Declare the decorated coroutine as a function served at ``route``. See ``CORE_OPTIONS`` and the
    layers' options (``runtime.options``)."""
    route = options.get("route")
    if not isinstance(route, str) or not route.startswith("/"):
        raise FunctionDefinitionError(f"@function needs route='/path', got {route!r}")
    methods = tuple(str(m).upper() for m in options.get("methods", ["GET"]))  # type: ignore[union-attr]
    bad = [m for m in methods if m not in HTTP_METHODS]
    if bad or not methods:
        raise FunctionDefinitionError(f"@function(route={route!r}) has bad methods {bad or methods}")
    rest = MappingProxyType({k: v for k, v in options.items() if k not in CORE_OPTIONS})

    def decorate(handler: Handler) -> Handler:
        if not inspect.iscoroutinefunction(handler):
            raise FunctionDefinitionError(f"{handler.__qualname__} must be 'async def handler(request, ctx)'")
        name = options.get("name") or handler.__name__
        spec = FunctionSpec(str(name), route, methods, handler, rest)
        specs = list(getattr(handler, SPEC_ATTR, ()))
        specs.append(spec)
        setattr(handler, SPEC_ATTR, specs)
        return handler

    return decorate
