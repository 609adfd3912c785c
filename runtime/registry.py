"""Discovers the function modules, validates them, and mounts each function on one stable endpoint.

Each module is loaded fresh under a unique module name (``spec_from_file_location``, never
``importlib.reload``). The route table is built once; every endpoint looks the *active* version of its
function up per request, so activating another version later is a pointer move, not a rebuild.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import ApiError, PayloadTooLarge, Timeout
from runtime.functions import SPEC_ATTR, FunctionDefinitionError, FunctionSpec
from runtime.response_cache import ResponseCache


@dataclass(frozen=True)
class LoadedModule:
    name: str  # e.g. "speech" or "admin.users"
    path: Path
    sha256: str
    module_name: str  # the unique sys.modules name it was loaded under
    specs: tuple[FunctionSpec, ...]


def load_module(path: Path, name: str) -> LoadedModule:
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    module_name = f"ef_functions.{name}.v{digest[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FunctionDefinitionError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except FunctionDefinitionError as exc:
        raise FunctionDefinitionError(f"{path}: {exc}") from None
    # Only the module's own functions; checked with inspect first, because some imported objects (peewee's
    # ``fn``) answer any attribute name.
    specs = [s for obj in vars(module).values()
             if inspect.isfunction(obj) and obj.__module__ == module_name
             for s in obj.__dict__.get(SPEC_ATTR, ())]
    if not specs:
        raise FunctionDefinitionError(f"{path} declares no @function handler; every module in functions/ must")
    return LoadedModule(name, path, digest, module_name, tuple(specs))


def discover(directory: Path) -> list[LoadedModule]:
    """Load every ``*.py`` under ``directory`` (files starting with ``_`` are helpers and skipped)."""
    modules = []
    for path in sorted(Path(directory).rglob("*.py")):
        rel = path.relative_to(directory)
        if any(part.startswith("_") for part in rel.parts):
            continue
        modules.append(load_module(path, ".".join(rel.with_suffix("").parts)))
    return modules


class Registry:
    def __init__(self, modules: list[LoadedModule], default_max_body: int,
                 responses: ResponseCache | None = None) -> None:
        self.default_max_body = default_max_body
        self.responses = responses
        self._active: dict[str, FunctionSpec] = {}
        self._where: dict[str, Path] = {}
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self.modules = {m.name: m for m in modules}
        seen_routes: dict[tuple[str, str], str] = {}
        for module in modules:
            for spec in module.specs:
                if spec.name in self._active:
                    raise FunctionDefinitionError(
                        f"function name {spec.name!r} is declared twice: in {self._where[spec.name]} and in "
                        f"{module.path}; give one of them another name=")
                for method in spec.methods:
                    other = seen_routes.get((method, spec.route))
                    if other:
                        raise FunctionDefinitionError(
                            f"{method} {spec.route} is served by both {other!r} and {spec.name!r} ({module.path})")
                    seen_routes[(method, spec.route)] = spec.name
                self._active[spec.name] = spec
                self._where[spec.name] = module.path

    def names(self) -> list[str]:
        return sorted(self._active)

    def specs(self) -> list[FunctionSpec]:
        """The active spec of every function (what ``/openapi.json`` describes)."""
        return list(self._active.values())

    def table(self, ctx: object) -> list[tuple[str, tuple[str, ...], object]]:
        """(route, methods, endpoint) per function, for ``runtime.router.FunctionRouter``."""
        return [(spec.route, spec.methods, self._endpoint(spec.name, ctx)) for spec in self._active.values()]

    def _endpoint(self, name: str, ctx: object):
        async def endpoint(request: Request) -> Response:
            spec = self._active[name]  # the pointer: looked up per request
            if request.method not in ("GET", "HEAD"):
                limit = spec.max_body if spec.max_body is not None else self.default_max_body
                declared = request.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    raise PayloadTooLarge(
                        f"the request body is {declared} bytes; this function accepts at most {limit}")
                request = Request(request.scope, _limited_receive(request.receive, limit))
            if spec.concurrency:
                semaphore = self._semaphores.setdefault(name, asyncio.Semaphore(spec.concurrency))
                if semaphore.locked():
                    raise ApiError(f"{name} is at its limit of {spec.concurrency} requests in flight; retry shortly",
                                   code="too_many_requests", status=429, headers={"Retry-After": "1"})
                async with semaphore:
                    response = await _with_timeout(spec, request, ctx)
            else:
                response = await _with_timeout(spec, request, ctx)
            scope = request.scope
            if (self.responses is not None and getattr(response, "immutable", False) and scope["method"] == "GET"
                    and not scope["query_string"] and response.status_code == 200):
                self.responses.store(scope["path"], name, 200, response.raw_headers, response.body)
            return response

        endpoint.__name__ = name
        return endpoint


async def _with_timeout(spec: FunctionSpec, request: Request, ctx: object) -> Response:
    # asyncio.timeout, not wait_for: no extra task per request, which matters on the cached-audio path
    try:
        async with asyncio.timeout(spec.timeout_s):
            return await spec.handler(request, ctx)
    except TimeoutError:
        raise Timeout(f"{spec.name} did not answer within {spec.timeout_s:g}s") from None


def _limited_receive(receive, limit: int):
    received = 0

    async def wrapped():
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"the request body exceeds this function's limit of {limit} bytes")
        return message

    return wrapped
