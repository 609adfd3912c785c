"""The tiny router: the function route table, built once, as a pure ASGI app.

Why not Starlette's ``Router`` + middleware stack: on the cached-audio path that stack measured ~0.18x
nginx's requests/s here (the target is >= 0.4x), while the route table is small and static. So routing
and error edges are these few lines; Starlette still provides ``Request``, ``Response``, the path
compiler/convertors (``compile_path``) and the lifespan protocol (``Router(lifespan=…)``).
Static paths are a dict lookup; parameterised ones are tried in declaration order. Given the registry as
``follow``, the table is rebuilt when a deploy adds or moves a route (``registry.generation``); a version
switch that keeps the routes changes nothing here (each endpoint looks its version up per request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Router, compile_path

from runtime.errors import ApiError, NotFound

Endpoint = Callable[[Request], Awaitable[Response]]


class FunctionRouter:
    def __init__(self, table: list[tuple[str, tuple[str, ...], Endpoint]], lifespan=None, follow=None) -> None:
        self._follow = follow
        self._generation = follow.generation if follow is not None else 0
        self._build(table)
        self._lifespan = Router(lifespan=lifespan)

    def _build(self, table: list[tuple[str, tuple[str, ...], Endpoint]]) -> None:
        self._static: dict[str, dict[str, Endpoint]] = {}
        self._dynamic: list[tuple[object, dict, dict[str, Endpoint]]] = []
        by_route: dict[str, dict[str, Endpoint]] = {}
        for route, methods, endpoint in table:
            slot = by_route.setdefault(route, {})
            for method in methods:
                slot[method] = endpoint
            if "GET" in methods:
                slot.setdefault("HEAD", endpoint)  # uvicorn drops the body of HEAD answers
        for route, slot in by_route.items():
            if "{" in route:
                regex, _, convertors = compile_path(route)
                self._dynamic.append((regex, convertors, slot))
            else:
                self._static[route] = slot

    def match(self, path: str) -> tuple[dict[str, Endpoint] | None, dict]:
        slot = self._static.get(path)
        if slot is not None:
            return slot, {}
        for regex, convertors, slot in self._dynamic:
            found = regex.match(path)
            if found:
                return slot, {k: convertors[k].convert(v) for k, v in found.groupdict().items()}
        return None, {}

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(scope, receive, send)
        if kind != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        follow = self._follow
        if follow is not None and follow.generation != self._generation:
            self._generation = follow.generation
            self._build(follow.table())
        slot, params = self.match(scope["path"])
        if slot is None:
            raise NotFound(f"no function serves {scope['path']}", code="not_found")
        endpoint = slot.get(scope["method"])
        if endpoint is None:
            allowed = ", ".join(sorted(slot))
            raise ApiError(f"{scope['method']} is not allowed here; use {allowed}", code="method_not_allowed",
                           status=405, headers={"allow": allowed})
        scope["path_params"] = params
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)
