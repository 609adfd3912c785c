"""Discovers the function modules, validates them, and mounts each function on one stable endpoint.

Each module is loaded fresh under a unique module name (``spec_from_file_location``, never
``importlib.reload``). A module's loaded code is a ``Version``; which version serves is a ``Deployment``
(the stable version, and optionally a canary taking a share of callers), swapped whole per module. Every
endpoint looks its function's deployment up per request, so activating another version is a pointer move:
requests in flight finish on the version they started on, and the route table is rebuilt only when a
version's routes differ (``generation``). ``runtime.deploy`` records versions and moves the pointers.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import itertools
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from runtime import logging as runtime_logging
from runtime import metrics
from runtime.errors import ApiError, NotFound
from runtime.functions import CORE_OPTIONS, SPEC_ATTR, FunctionDefinitionError, FunctionSpec
from runtime.options import Layer, Sending, streamed
from runtime.options.concurrency import TOO_MANY
from runtime.response_cache import ResponseCache
from runtime.security.addresses import SCOPE_CLIENT

SCOPE_PIN = "ef.version"  # X-Function-Version, as the edge read it
_unique = itertools.count(1)


class RouteCollision(FunctionDefinitionError):
    """A function's name or route is already another module's."""


@dataclass(frozen=True)
class LoadedModule:
    name: str  # e.g. "speech" or "admin.users"
    path: Path
    sha256: str
    module_name: str  # the unique sys.modules name it was loaded under
    specs: tuple[FunctionSpec, ...]
    source: str = ""


def load_module(path: Path, name: str, unique: bool = False) -> LoadedModule:
    """Load ``path`` as a fresh module. ``unique``: under a name no other load uses (a deploy's candidate);
    otherwise the name follows the source's hash."""
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    module_name = f"ef_functions.{name}.v{digest[:12]}" + (f"_{next(_unique)}" if unique else "")
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise FunctionDefinitionError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        # Compiled from the bytes just hashed, not through the loader: a __pycache__ file with the same
        # mtime (to the second) and size as a rewritten source would run the old code under the new hash.
        exec(compile(source, str(path), "exec"), module.__dict__)
    except FunctionDefinitionError as exc:
        del sys.modules[module_name]
        raise FunctionDefinitionError(f"{path}: {exc}") from None
    except BaseException:
        del sys.modules[module_name]
        raise
    # Only the module's own functions; checked with inspect first, because some imported objects (peewee's
    # ``fn``) answer any attribute name.
    specs = [s for obj in vars(module).values()
             if inspect.isfunction(obj) and obj.__module__ == module_name
             for s in obj.__dict__.get(SPEC_ATTR, ())]
    if not specs:
        del sys.modules[module_name]
        raise FunctionDefinitionError(f"{path} declares no @function handler; every module in functions/ must")
    return LoadedModule(name, path, digest, module_name, tuple(specs), source.decode("utf-8", "replace"))


def discover(directory: Path) -> list[LoadedModule]:
    """Load every ``*.py`` under ``directory`` (files starting with ``_`` are helpers and skipped)."""
    modules = []
    for path in sorted(Path(directory).rglob("*.py")):
        rel = path.relative_to(directory)
        if any(part.startswith("_") for part in rel.parts):
            continue
        modules.append(load_module(path, ".".join(rel.with_suffix("").parts)))
    return modules


def merge_options(options: Mapping[str, object], overrides: Mapping[str, object]) -> Mapping[str, object]:
    """A spec's options with a deploy's overrides (``config`` merges key by key)."""
    merged = dict(options)
    for key, value in overrides.items():
        if key == "config" and isinstance(value, Mapping):
            merged["config"] = {**dict(merged.get("config") or {}), **value}
        else:
            merged[key] = value
    return MappingProxyType(merged)


class _Stats:
    """One function of one version in this process: its metric series, and whether it was called yet."""

    __slots__ = ("cold", "label", "name", "seconds", "statuses", "version")

    def __init__(self, name: str, version: int) -> None:
        self.name, self.version = name, str(version)
        self.label = f"{name}@{version}"  # on every log line of its requests
        self.statuses: dict[int, object] = {}
        self.seconds = metrics.REQUEST_SECONDS.labels(name, self.version)
        self.cold = True
        for series in (metrics.FUNCTION_TIMEOUTS, metrics.FUNCTION_REJECTIONS):  # at zero, for dashboards
            series.labels(name, self.version)

    def count(self, status: int, began: float) -> None:
        counter = self.statuses.get(status)
        if counter is None:
            counter = self.statuses[status] = metrics.REQUESTS.labels(self.name, self.version, str(status))
        counter.inc()
        self.seconds.observe(time.perf_counter() - began)


class Version:
    """One loaded version of a module: its functions' specs (with the deploy's option overrides), their
    calls composed by the layers (on first use), and its recent outcomes (what a canary is judged on)."""

    def __init__(self, loaded: LoadedModule, number: int, overrides: Mapping[str, object] | None = None,
                 window: int = 20) -> None:
        self.loaded = loaded
        self.module = loaded.name
        self.number = number
        self.overrides = dict(overrides or {})
        self.specs: dict[str, FunctionSpec] = {
            s.name: replace(s, version=number, options=merge_options(s.options, self.overrides))
            for s in loaded.specs}
        self.calls: dict[str, tuple[object, bool]] = {}
        self.stats = {name: _Stats(name, number) for name in self.specs}
        self.outcomes: deque[bool] = deque(maxlen=window)  # True: an error (5xx or timeout)
        self.judged = False  # a canary is rolled back once

    def routes(self) -> set[tuple[str, str]]:
        return {(m, s.route) for s in self.specs.values() for m in s.methods}

    def error_rate(self) -> float:
        return sum(self.outcomes) / len(self.outcomes) if self.outcomes else 0.0

    def __repr__(self) -> str:
        return f"<{self.module} v{self.number}>"


@dataclass(frozen=True)
class Deployment:
    """What serves a module: ``stable``, and ``canary`` for ``pct`` % of callers (stable per caller)."""

    stable: Version
    canary: Version | None = None
    pct: int = 0
    generation: int = 0  # the database pointer's generation it follows (0: not from the database)

    def pick(self, scope) -> Version:
        if self.canary is None:
            return self.stable
        return self.canary if caller_bucket(scope, self.canary) < self.pct else self.stable


def caller_bucket(scope, version: Version) -> int:
    """0-99, the same for one caller (client address and presented key) and one canary version."""
    who = [scope.get(SCOPE_CLIENT) or "", f"{version.module}@{version.number}"]
    for name, value in scope["headers"]:
        if name in (b"authorization", b"x-api-key"):
            who.append(value.decode("latin-1"))
    digest = hashlib.blake2b("|".join(who).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % 100


@dataclass(frozen=True)
class CanaryPolicy:
    """A canary is rolled back when, over its last ``window`` requests in this process (once it has
    answered ``min_requests``), its share of 5xx and timeouts passes ``max_error_rate`` and the stable
    version's (in the same process) is lower: an engine outage that fails both is not the canary's fault."""

    window: int = 20
    min_requests: int = 5
    max_error_rate: float = 0.2

    def fails(self, canary: Version, stable: Version) -> bool:
        if len(canary.outcomes) < self.min_requests:
            return False
        rate = canary.error_rate()
        return rate > self.max_error_rate and rate > stable.error_rate()


class Registry:
    """The functions of ``modules``, each checked by the option layers (``runtime.options``) and mounted on
    one endpoint that looks its module's deployment up per request."""

    def __init__(self, modules: list[LoadedModule], layers: list[Layer],
                 responses: ResponseCache | None = None, canary: CanaryPolicy | None = None,
                 may_pin: Callable[[dict], bool] | None = None) -> None:
        self.layers = layers
        self.responses = responses
        self.canary = canary or CanaryPolicy()
        self.may_pin = may_pin  # who may call a version by X-Function-Version (the admin addresses)
        self.generation = 0  # grows when a route or function appears, moves or goes
        self.ctx: object = None
        # set by runtime.deploy: load a stored version on demand; told when a canary fails
        self.load_version: Callable[[str, int], Version | None] | None = None
        self.on_canary_failed: Callable[[Deployment, dict], None] | None = None
        self._deployments: dict[str, Deployment] = {}
        self._module_of: dict[str, str] = {}  # function name -> module
        self._versions: dict[tuple[str, int], Version] = {}
        self._endpoints: dict[str, object] = {}
        self._owners = {option: layer for layer in layers for option in layer.options}
        for module in modules:
            version = self.build(module, 1)
            self.check(version)
            self.activate(Deployment(version))

    # -- building and checking versions -------------------------------------------------------------------

    def build(self, loaded: LoadedModule, number: int, overrides: Mapping[str, object] | None = None) -> Version:
        return Version(loaded, number, overrides, self.canary.window)

    def check(self, version: Version, canary: bool = False, against: Version | None = None) -> None:
        """Raise ``FunctionDefinitionError`` unless ``version`` may serve beside every other module: options
        known and valid, names and routes its own (``RouteCollision``); a canary must keep the functions and
        routes of the stable version (``against``, by default the serving one) exactly."""
        where = version.loaded.path
        for spec in version.specs.values():
            unknown = sorted(set(spec.options) - set(self._owners))
            if unknown:
                known = "; ".join(f"{k}: {v}" for k, v in
                                  {**CORE_OPTIONS, **{o: d for layer in self.layers for o, d in layer.options.items()}}
                                  .items())
                raise FunctionDefinitionError(f"{where}: unknown option(s) {unknown} in @function "
                                              f"{spec.name!r}; known options are {known}")
            for layer in self.layers:
                try:
                    layer.check(spec)
                except FunctionDefinitionError as exc:
                    raise FunctionDefinitionError(f"{where}: {exc}") from None
        own: dict[tuple[str, str], str] = {}
        for spec in version.specs.values():
            for method in spec.methods:
                other = own.get((method, spec.route))
                if other:
                    raise RouteCollision(f"{method} {spec.route} is served by both {other!r} and {spec.name!r} "
                                         f"({where})")
                own[(method, spec.route)] = spec.name
        for module, deployment in self._deployments.items():
            if module == version.module:
                continue
            for other in filter(None, (deployment.stable, deployment.canary)):
                for name in version.specs.keys() & other.specs.keys():
                    raise RouteCollision(
                        f"function name {name!r} is declared twice: in {other.loaded.path} and in {where}; "
                        f"give one of them another name=")
                for method, route in version.routes() & other.routes():
                    other_name = next(s.name for s in other.specs.values()
                                      if s.route == route and method in s.methods)
                    raise RouteCollision(f"{method} {route} is served by both {other_name!r} and "
                                         f"{own[(method, route)]!r} ({where})")
        stable = against or (self._deployments[version.module].stable if canary else None)
        if canary and (version.specs.keys() != stable.specs.keys() or version.routes() != stable.routes()):
            raise RouteCollision(f"{where} changes its functions or routes; a canary serves the same routes as "
                                 f"version {stable.number} (deploy it without a canary to move them)")

    # -- the pointers -------------------------------------------------------------------------------------

    def activate(self, deployment: Deployment) -> None:
        """Serve ``deployment`` for its module from the next request on (checked versions only)."""
        module = deployment.stable.module
        before = self._deployments.get(module)
        for version in filter(None, (deployment.stable, deployment.canary)):
            self._versions[(module, version.number)] = version
        moved = before is None or before.stable.routes() != deployment.stable.routes()
        self._deployments[module] = deployment
        metrics.CANARY_ROLLBACKS.labels(module)  # the series exists at zero before the first rollback
        for name in deployment.stable.specs:
            self._module_of[name] = module
        if before is not None:
            for name in before.stable.specs.keys() - deployment.stable.specs.keys():
                self._module_of.pop(name, None)
            if self.responses is not None and (before.stable is not deployment.stable or deployment.canary):
                for name in before.stable.specs:
                    self.responses.forget_function(name)
        if moved:
            self.generation += 1

    def keep(self, version: Version) -> None:
        """Keep ``version`` loaded (rollback to it, or a pinned call, needs no loading)."""
        self._versions[(version.module, version.number)] = version

    def drop(self, module: str, number: int) -> None:
        """Forget a loaded version (it serves until the module's deployment changes)."""
        self._versions.pop((module, number), None)

    def deployment(self, module: str) -> Deployment | None:
        return self._deployments.get(module)

    def loaded(self, module: str, number: int) -> Version | None:
        return self._versions.get((module, number))

    def forget(self, module: str, keep: int = 4) -> None:
        """Unload all but the newest ``keep`` versions of ``module`` that serve neither stably nor as canary."""
        current = self._deployments.get(module)
        serving = {v.number for v in (current.stable, current.canary) if v} if current else set()
        numbers = sorted(n for (m, n) in self._versions if m == module)
        for number in numbers[:-keep] if len(numbers) > keep else []:
            if number not in serving:
                sys.modules.pop(self._versions.pop((module, number)).loaded.module_name, None)

    def modules(self) -> dict[str, Deployment]:
        return dict(self._deployments)

    def module_of(self, name: str) -> str | None:
        """The module of ``name``, which may be a module name or the name of one of its functions."""
        return name if name in self._deployments else self._module_of.get(name)

    def names(self) -> list[str]:
        return sorted(self._module_of)

    def specs(self) -> list[FunctionSpec]:
        """The stable spec of every function (what ``/openapi.json`` describes)."""
        return [spec for d in self._deployments.values() for spec in d.stable.specs.values()]

    def spec(self, name: str) -> FunctionSpec:
        return self._deployments[self._module_of[name]].stable.specs[name]

    def admits_anyone(self, name: str) -> bool:
        """True when no layer refuses any caller of ``name``: only such answers may be kept by the edge
        micro-cache, which answers before any layer runs."""
        return self._admits_anyone(self.spec(name))

    def _admits_anyone(self, spec: FunctionSpec) -> bool:
        return all(layer.admits_anyone(spec) for layer in self.layers)

    def rate_limited(self, spec: FunctionSpec) -> bool:
        """True when a layer limits how often ``spec`` may be called (its document lists 429)."""
        return any(getattr(layer, "limit_of", lambda _spec: None)(spec) for layer in self.layers)

    def table(self, ctx: object = None) -> list[tuple[str, tuple[str, ...], object]]:
        """(route, methods, endpoint) per function, for ``runtime.router.FunctionRouter``."""
        if ctx is not None:
            self.ctx = ctx
        return [(spec.route, spec.methods, self._endpoint(spec.name)) for spec in self.specs()]

    # -- serving ------------------------------------------------------------------------------------------

    def call_of(self, version: Version, name: str):
        """``name``'s handler in ``version``, wrapped by every layer (composed on first use)."""
        composed = version.calls.get(name)
        if composed is not None:
            return composed
        spec = version.specs[name]
        ctx = self.ctx

        async def call(request: Request) -> Response:
            return await spec.handler(request, ctx)

        for layer in reversed(self.layers):
            call = layer.wrap(spec, call)
        composed = version.calls[name] = (call, self.responses is not None and self._admits_anyone(spec))
        return composed

    async def _pinned(self, deployment: Deployment, name: str, raw: str, scope) -> Version:
        """The version an admin asked for with ``X-Function-Version``, to smoke-test it at 0 % traffic."""
        from runtime.security.auth import Forbidden

        if self.may_pin is None or not self.may_pin(scope):
            raise Forbidden("X-Function-Version is for admin addresses only", code="version_pin_forbidden")
        if not raw.isdigit():
            raise ApiError(f"X-Function-Version must be a version number, got {raw[:20]!r}", code="bad_version")
        module, number = deployment.stable.module, int(raw)
        version = self._versions.get((module, number))
        if version is None and self.load_version is not None:
            from starlette.concurrency import run_in_threadpool

            version = await run_in_threadpool(self.load_version, module, number)
        if version is None:
            raise NotFound(f"{module} has no version {number}", code="unknown_version")
        spec = version.specs.get(name)
        if spec is None or spec.route != deployment.stable.specs[name].route:
            raise ApiError(f"version {number} of {module} does not serve {name} at this route",
                           code="version_route_differs", status=409)
        return version

    def _judge(self, deployment: Deployment, version: Version, error: bool) -> None:
        version.outcomes.append(error)
        if version is deployment.canary and not version.judged and self.canary.fails(version, deployment.stable):
            version.judged = True
            figures = {"canary": version.number, "stable": deployment.stable.number,
                       "window": len(version.outcomes), "errors": sum(version.outcomes),
                       "error_rate": round(version.error_rate(), 3),
                       "stable_error_rate": round(deployment.stable.error_rate(), 3),
                       "max_error_rate": self.canary.max_error_rate}
            logger.warning("canary {} v{} of {} failed: {} errors in its last {} requests ({:.0%} > {:.0%}); "
                           "rolling back to v{}", version.module, version.number, version.module,
                           figures["errors"], figures["window"], figures["error_rate"],
                           self.canary.max_error_rate, deployment.stable.number)
            metrics.CANARY_ROLLBACKS.labels(version.module).inc()
            self.activate(Deployment(deployment.stable, generation=deployment.generation))
            if self.on_canary_failed is not None:
                self.on_canary_failed(deployment, figures)

    def _endpoint(self, name: str):
        endpoint = self._endpoints.get(name)
        if endpoint is not None:
            return endpoint

        def finished(deployment: Deployment, version: Version, stats: _Stats, status: int, began: float,
                     code: str = "") -> None:
            stats.count(status, began)
            if code == "timeout":
                metrics.FUNCTION_TIMEOUTS.labels(name, stats.version).inc()
            elif code == TOO_MANY:
                metrics.FUNCTION_REJECTIONS.labels(name, stats.version).inc()
            if deployment.canary is not None:
                self._judge(deployment, version, status >= 500)

        async def endpoint(request: Request) -> Response:
            scope = request.scope
            deployment = self._deployments[self._module_of[name]]  # the pointer: looked up per request
            pin = scope.get(SCOPE_PIN)
            version = deployment.pick(scope) if pin is None else await self._pinned(deployment, name, pin, scope)
            call, cacheable = self.call_of(version, name)
            stats = version.stats[name]
            runtime_logging.function.set(stats.label)  # the edge resets it after the request
            if stats.cold:
                stats.cold = False
                metrics.FUNCTION_COLD_STARTS.labels(name, stats.version).inc()
            began = time.perf_counter()
            try:
                response = await call(request)
            except ApiError as exc:
                finished(deployment, version, stats, exc.status, began, exc.code)
                raise
            except Exception:
                finished(deployment, version, stats, 500, began)
                raise
            status = response.status_code
            if streamed(response):
                def sent(error: BaseException | None) -> None:  # the body is out, or sending failed
                    if error is None:
                        finished(deployment, version, stats, status, began)
                    elif isinstance(error, ApiError):  # timeout_s cut the stream off
                        finished(deployment, version, stats, error.status, began, error.code)
                    else:
                        finished(deployment, version, stats, 500, began)

                return Sending(response, sent)
            finished(deployment, version, stats, status, began)
            if (cacheable and status == 200 and getattr(response, "immutable", False) and pin is None
                    and deployment.canary is None and scope["method"] == "GET" and not scope["query_string"]):
                self.responses.store(scope["path"], name, 200, response.raw_headers, response.body)
            return response

        endpoint.__name__ = name
        self._endpoints[name] = endpoint
        return endpoint

