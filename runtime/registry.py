"""Discovers the function modules, validates them, and mounts each function on one stable endpoint.

Each module is loaded fresh under a unique module name (``spec_from_file_location``, never
``importlib.reload``). The route table is built once; every endpoint looks the *active* version of its
function up per request, so activating another version later is a pointer move, not a rebuild.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from runtime import metrics
from runtime.errors import ApiError
from runtime.functions import CORE_OPTIONS, SPEC_ATTR, FunctionDefinitionError, FunctionSpec
from runtime.options import Layer
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
    """The functions of ``modules``, each checked by the option layers (``runtime.options``) and mounted on
    one endpoint that looks its active version up per request."""

    def __init__(self, modules: list[LoadedModule], layers: list[Layer],
                 responses: ResponseCache | None = None) -> None:
        self.layers = layers
        self.responses = responses
        self._active: dict[str, FunctionSpec] = {}
        self._calls: dict[str, tuple[FunctionSpec, object, bool]] = {}
        self._where: dict[str, Path] = {}
        self.modules = {m.name: m for m in modules}
        owners = {option: layer for layer in layers for option in layer.options}
        seen_routes: dict[tuple[str, str], str] = {}
        for module in modules:
            for spec in module.specs:
                unknown = sorted(set(spec.options) - set(owners))
                if unknown:
                    known = "; ".join(f"{k}: {v}" for k, v in
                                      {**CORE_OPTIONS, **{o: d for layer in layers for o, d in layer.options.items()}}
                                      .items())
                    raise FunctionDefinitionError(f"{module.path}: unknown option(s) {unknown} in @function "
                                                  f"{spec.name!r}; known options are {known}")
                for layer in layers:
                    try:
                        layer.check(spec)
                    except FunctionDefinitionError as exc:
                        raise FunctionDefinitionError(f"{module.path}: {exc}") from None
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

    def admits_anyone(self, name: str) -> bool:
        """True when no layer refuses any caller of ``name``: only such answers may be kept by the edge
        micro-cache, which answers before any layer runs."""
        spec = self._active[name]
        return all(layer.admits_anyone(spec) for layer in self.layers)

    def rate_limited(self, spec: FunctionSpec) -> bool:
        """True when a layer limits how often ``spec`` may be called (its document lists 429)."""
        return any(getattr(layer, "limit_of", lambda _spec: None)(spec) for layer in self.layers)

    def table(self, ctx: object) -> list[tuple[str, tuple[str, ...], object]]:
        """(route, methods, endpoint) per function, for ``runtime.router.FunctionRouter``."""
        return [(spec.route, spec.methods, self._endpoint(spec.name, ctx)) for spec in self._active.values()]

    def _call(self, spec: FunctionSpec, ctx: object):
        """The spec's handler wrapped by every layer (built once per spec, reused per request)."""
        cached = self._calls.get(spec.name)
        if cached is not None and cached[0] is spec:
            return cached[1], cached[2]

        async def call(request: Request) -> Response:
            return await spec.handler(request, ctx)

        for layer in reversed(self.layers):
            call = layer.wrap(spec, call)
        cacheable = self.responses is not None and self.admits_anyone(spec.name)
        self._calls[spec.name] = (spec, call, cacheable)
        return call, cacheable

    def _endpoint(self, name: str, ctx: object):
        requests_by_status: dict[int, object] = {}
        seconds = metrics.REQUEST_SECONDS.labels(name)

        def count(status: int, began: float) -> None:
            counter = requests_by_status.get(status)
            if counter is None:
                counter = requests_by_status[status] = metrics.REQUESTS.labels(name, str(status))
            counter.inc()
            seconds.observe(time.perf_counter() - began)

        async def endpoint(request: Request) -> Response:
            spec = self._active[name]  # the pointer: looked up per request
            call, cacheable = self._call(spec, ctx)
            began = time.perf_counter()
            try:
                response = await call(request)
            except ApiError as exc:
                count(exc.status, began)
                raise
            except Exception:
                count(500, began)
                raise
            count(response.status_code, began)
            scope = request.scope
            if (cacheable and getattr(response, "immutable", False) and scope["method"] == "GET"
                    and not scope["query_string"] and response.status_code == 200):
                self.responses.store(scope["path"], name, 200, response.raw_headers, response.body)
            return response

        endpoint.__name__ = name
        return endpoint
