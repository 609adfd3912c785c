"""Deploy, promote and roll back one function module while the rest keeps serving.

A deploy loads the new source as a fresh module under a unique name (never ``importlib.reload``), checks
it as the registry would serve it (a handler for every function the serving version has, options its
layers accept, routes unchanged or colliding with nothing), runs its ``self_test`` against the new version
alone, and only then stores it and moves the pointer: a broken version is refused with the error and never
serves. The process that moved the pointer serves the new version from its next request; every other
process follows within ``FUNCTION_SYNC_S`` (``runtime.deploy.sync``). Each version keeps its loaded code in
memory (``Registry.forget`` keeps the newest few), so a rollback is a pointer move.

Shipped files and deploys: at start-up each file in ``functions/`` whose source is new is recorded as a
version (``shipped``). While the serving version is a shipped one, the new shipped file becomes active (an
upgrade of the software upgrades its functions); when an operator's deploy serves, it keeps serving and
the start-up logs that a newer shipped version waits (``rollback NAME --to N`` activates it). A file
recorded before changes nothing: a rollback from a shipped upgrade survives restarts.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import threading
import traceback
from pathlib import Path

from loguru import logger
from starlette.concurrency import run_in_threadpool

from runtime.deploy import versions as store
from runtime.deploy.versions import DeployRefused
from runtime.errors import NotFound
from runtime.functions import FunctionDefinitionError
from runtime.registry import Deployment, LoadedModule, Registry, RouteCollision, Version, load_module
from runtime.security import audit

SYSTEM = "system:canary"


def _error_text(exc: BaseException, path: Path | None = None) -> str:
    """A load error as one line: its type, message and, when it happened in the new source, the line."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if path is not None and f.filename == str(path)]
    return f"{type(exc).__name__}: {exc}" + (f" (line {lines[-1]})" if lines else "")


class Deployments:
    """The process's side of the deploys: records shipped files, loads stored versions, moves pointers."""

    def __init__(self, settings, registry: Registry, shipped: list[LoadedModule], ctx: object = None) -> None:
        self.settings = settings
        self.registry = registry
        self.shipped = {m.name: m for m in shipped}
        self.directory = Path(settings.data_dir) / "functions"
        self.ctx = ctx
        self._failed: dict[str, int] = {}  # module -> the pointer generation that did not load here
        self._lock = threading.Lock()  # applying pointers: the sync thread and a deploy in this process
        registry.load_version = self.load
        registry.on_canary_failed = self._canary_failed

    # -- start-up and following the pointers ---------------------------------------------------------------

    def start_up(self) -> None:
        """Record the shipped files as versions where new, then serve what every pointer says."""
        with store.locked():
            for module in self.shipped.values():
                self._record_shipped(module)
        for module in self.shipped.values():
            # the registry was built from the files as version 1: keep that only where v1 is this source
            first = store.version(module.name, 1)
            if first is None or first.sha256 != module.sha256:
                self.registry.drop(module.name, 1)
        self.sync(starting=True)

    def _record_shipped(self, module: LoadedModule) -> None:
        row = store.find(module.name, module.sha256, "{}", store.SHIPPED)
        if row is not None:  # recorded at an earlier start: whatever the operator did since stands
            if store.pointer(module.name) is None:
                store.move(module.name, "release", "shipped", active=row.version)
            return
        row = store.add(module.name, module.source, "{}", store.SHIPPED, "release",
                        f"functions/{module.path.name} as shipped")
        logger.info("recorded {} v{} (shipped)", module.name, row.version)
        pointer = store.pointer(module.name)
        if pointer is None:
            store.move(module.name, "release", "shipped", active=row.version)
            return
        active = store.version(module.name, pointer.active)
        if active is not None and active.origin == store.SHIPPED and pointer.canary is None:
            store.move(module.name, "release", f"shipped upgrade from v{pointer.active}", active=row.version,
                       previous=pointer.active)
            logger.info("{}: the shipped v{} replaces shipped v{}", module.name, row.version, pointer.active)
        elif row.version > pointer.active:  # a newer release waits behind an operator's deploy
            logger.warning("{}: v{} (deployed by {}) keeps serving; the shipped file is v{} "
                           "(`python -m runtime rollback {} --to {}` serves it)", module.name, pointer.active,
                           active.created_by if active else "?", row.version, module.name, row.version)

    def sync(self, starting: bool = False) -> list[str]:
        """Serve what the pointers say where this process differs; returns the modules it switched."""
        switched = []
        for pointer in store.pointers():
            current = self.registry.deployment(pointer.module)
            if current is None and pointer.module not in self.shipped:
                continue  # a module this release no longer ships
            if current is not None and current.generation == pointer.generation:
                continue
            if self._failed.get(pointer.module) == pointer.generation:
                continue
            try:
                self.apply(pointer)
                switched.append(pointer.module)
            except Exception as exc:  # keep serving what serves; say why once per pointer change
                self._failed[pointer.module] = pointer.generation
                logger.error("{}: cannot serve v{}{} here: {}", pointer.module, pointer.active,
                             f" (canary v{pointer.canary})" if pointer.canary else "", _error_text(exc))
                if starting and current is not None:
                    logger.error("{}: serving the shipped version instead", pointer.module)
        return switched

    def apply(self, pointer) -> Deployment:
        """Serve ``pointer`` in this process."""
        with self._lock:
            stable = self.load(pointer.module, pointer.active)
            canary = self.load(pointer.module, pointer.canary) if pointer.canary else None
            if stable is None or (pointer.canary and canary is None):
                raise NotFound(f"{pointer.module} v{pointer.active} is not stored")
            current = self.registry.deployment(pointer.module)
            if current is None or current.stable is not stable:
                self.registry.check(stable)
            if canary is not None:
                self.registry.check(canary, canary=True, against=stable)
            deployment = Deployment(stable, canary, pointer.canary_pct if canary else 0, pointer.generation)
            self.registry.activate(deployment)
            self.registry.forget(pointer.module)
            self._failed.pop(pointer.module, None)
            serving = (stable.number, canary.number if canary else None, deployment.pct)
            if current is not None and serving != (current.stable.number, current.canary.number if current.canary
                                                   else None, current.pct):
                logger.info("{} now serves v{}{}", pointer.module, stable.number,
                            f", canary v{canary.number} at {deployment.pct}%" if canary else "")
            return deployment

    def load(self, module: str, number: int) -> Version | None:
        """Version ``number`` of ``module``, from memory or loaded from its stored source."""
        loaded = self.registry.loaded(module, number)
        if loaded is not None:
            return loaded
        row = store.version(module, number)
        if row is None:
            return None
        shipped = self.shipped.get(module)
        if shipped is not None and shipped.sha256 == row.sha256:
            code = shipped
        else:
            code = load_module(store.materialise(self.directory, module, row.source), module, unique=True)
        version = self.registry.build(code, number, json.loads(row.options))
        self.registry.keep(version)
        return version

    # -- the operations ------------------------------------------------------------------------------------

    def module_of(self, name: str) -> str:
        module = self.registry.module_of(name)
        if module is None:
            raise NotFound(f"no function or function module {name!r}; `python -m runtime functions` lists them",
                           code="unknown_function")
        return module

    async def deploy(self, name: str, source: str | None, who: str, client: str, note: str = "",
                     canary: int | None = None, overrides: dict | None = None) -> dict:
        """Check, store and activate (or start as a canary at ``canary`` %) a new version of ``name``'s module:
        ``source`` (None: the serving version's, with other ``overrides``)."""
        module = self.module_of(name)
        if canary is not None and not (isinstance(canary, int) and not isinstance(canary, bool) and 0 <= canary <= 100):
            raise DeployRefused("canary must be a percentage from 0 to 100", "bad_canary")
        overrides = dict(overrides or {})
        if source is None:
            serving = self.registry.deployment(module).stable
            source = store.version(module, serving.number).source
            overrides = {**serving.overrides, **overrides}
        candidate = None
        try:
            candidate = await run_in_threadpool(self._candidate, module, source, overrides, canary is not None)
            await self._self_test(candidate)
        except DeployRefused as exc:
            if candidate is not None:
                sys.modules.pop(candidate.loaded.module_name, None)
            audit.record(who, client, "function.deploy", audit.FAILURE, module, code=exc.code, error=exc.message,
                         sha256=store.sha256(source))
            raise
        return await run_in_threadpool(self._store, module, candidate, source, overrides, who, client, note, canary)

    def _candidate(self, module: str, source: str, overrides: dict, canary: bool) -> Version:
        if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
            raise DeployRefused("options must map option names to values", "bad_options")
        path = store.materialise(self.directory, module, source)
        try:
            code = load_module(path, module, unique=True)
        except FunctionDefinitionError as exc:
            raise DeployRefused(str(exc), "invalid_function") from None
        except (Exception, SystemExit) as exc:  # any error of the new code refuses it
            raise DeployRefused(f"the new source does not load: {_error_text(exc, path)}", "load_failed") from None
        try:
            return self._checked(self.registry.build(code, 0, overrides), canary)
        except DeployRefused:
            sys.modules.pop(code.module_name, None)
            raise

    def _checked(self, version: Version, canary: bool) -> Version:
        module = version.module
        current = self.registry.deployment(module).stable
        missing = sorted(current.specs.keys() - version.specs.keys())
        if missing:
            raise DeployRefused(
                f"the new source does not declare {', '.join(missing)} (version {current.number} does): a deploy "
                f"may change or add functions, not remove them", "missing_function")
        try:
            self.registry.check(version, canary=canary)
        except RouteCollision as exc:
            raise DeployRefused(str(exc), "route_collision") from None
        except FunctionDefinitionError as exc:
            raise DeployRefused(str(exc), "invalid_function") from None
        return version

    async def _self_test(self, version: Version) -> None:
        tests = [(name, spec.option("self_test")) for name, spec in version.specs.items() if spec.option("self_test")]
        if not tests:
            return
        import httpx

        from runtime.app import Edge
        from runtime.router import FunctionRouter

        table = [(spec.route, spec.methods, self._direct(version, name)) for name, spec in version.specs.items()]
        app = Edge(FunctionRouter(table), access_log=False)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://self-test") as client:
            for name, test in tests:
                try:
                    async with asyncio.timeout(self.settings.self_test_timeout_s):
                        result = test(client)
                        if inspect.isawaitable(result):
                            await result
                except TimeoutError:
                    raise DeployRefused(f"{name}'s self-test did not finish within "
                                             f"{self.settings.self_test_timeout_s:g}s", "self_test_failed") from None
                except Exception as exc:
                    raise DeployRefused(f"{name}'s self-test failed: {_error_text(exc, version.loaded.path)}",
                                             "self_test_failed") from None

    def _direct(self, version: Version, name: str):
        async def endpoint(request):
            call, _ = self.registry.call_of(version, name)
            return await call(request)

        return endpoint

    def _store(self, module: str, candidate: Version, source: str, overrides: dict, who: str, client: str,
               note: str, canary: int | None) -> dict:
        options = store.options_text(overrides)
        with store.locked():
            pointer = store.pointer(module)
            row = store.find(module, store.sha256(source), options)
            created = row is None
            if created:
                row = store.add(module, source, options, store.DEPLOY, who, note)
            number = row.version
            if canary is not None:
                if number == pointer.active:
                    raise DeployRefused(f"v{number} is the serving version; a canary must differ",
                                             "already_active")
                reason = f"deploy v{number} as canary at {canary}%"
                pointer = store.move(module, who, reason, canary=number, canary_pct=canary)
            elif number == pointer.active and pointer.canary is None:
                return {"module": module, "version": number, "created": False, "changed": False,
                        "message": f"v{number} already serves {module}"}
            else:
                reason = f"deploy v{number}"
                pointer = store.move(module, who, reason, active=number, previous=pointer.active, canary=None,
                                     canary_pct=0)
        if self.registry.loaded(module, number) is None:  # a version deployed again keeps its loaded code
            self.registry.keep(self.registry.build(candidate.loaded, number, overrides))
        audit.record(who, client, "function.deploy", audit.SUCCESS, module, version=number, created=created,
                     canary=canary, sha256=row.sha256, note=note, options=overrides)
        self.apply(pointer)
        return {"module": module, "version": number, "created": created, "changed": True, "message": reason,
                **self.describe(module)}

    def promote(self, name: str, who: str, client: str) -> dict:
        module = self.module_of(name)
        with store.locked():
            pointer = store.pointer(module)
            if pointer.canary is None:
                raise DeployRefused(f"{module} has no canary to promote", "no_canary", 409)
            number = pointer.canary
            pointer = store.move(module, who, f"promote canary v{number}", active=number, previous=pointer.active,
                                 canary=None, canary_pct=0)
        audit.record(who, client, "function.promote", audit.SUCCESS, module, version=number)
        self.apply(pointer)
        return {"module": module, "version": number, **self.describe(module)}

    def rollback(self, name: str, who: str, client: str, to: int | None = None) -> dict:
        """Back to ``to``, or (without it) end the canary if there is one, else back to the version that served
        before this one."""
        module = self.module_of(name)
        with store.locked():
            pointer = store.pointer(module)
            if to is None and pointer.canary is not None:
                number, reason = pointer.canary, f"roll back canary v{pointer.canary}"
                changes = {"canary": None, "canary_pct": 0}
            else:
                target = to if to is not None else pointer.previous
                if target is None:
                    raise DeployRefused(f"{module} has served only v{pointer.active}: nothing to roll back to",
                                             "nothing_to_roll_back", 409)
                if target == pointer.active and pointer.canary is None:
                    raise DeployRefused(f"v{target} already serves {module}", "already_active", 409)
                version = self.load(module, target)
                if version is None:
                    raise NotFound(f"{module} has no version {target}", code="unknown_version")
                try:
                    self.registry.check(version)
                except FunctionDefinitionError as exc:
                    raise DeployRefused(str(exc), "route_collision") from None
                number, reason = target, f"roll back from v{pointer.active} to v{target}"
                changes = {"active": target, "previous": pointer.active, "canary": None, "canary_pct": 0}
            pointer = store.move(module, who, reason, **changes)
        audit.record(who, client, "function.rollback", audit.SUCCESS, module, version=number, reason=reason)
        self.apply(pointer)
        return {"module": module, "message": reason, **self.describe(module)}

    def _canary_failed(self, deployment: Deployment, figures: dict) -> None:
        """Told by the registry (which already stopped sending traffic to the canary here): end the canary for
        every process, audited. In a thread: the request that tipped it must not wait for the database."""
        module, number = deployment.stable.module, figures["canary"]

        def end() -> None:
            try:
                with store.locked():
                    pointer = store.pointer(module)
                    if pointer is None or pointer.canary != number:
                        return  # promoted, replaced or ended meanwhile
                    reason = (f"automatic rollback: canary v{number} answered {figures['errors']} errors in its "
                              f"last {figures['window']} requests")
                    store.move(module, SYSTEM, reason, canary=None, canary_pct=0)
                audit.record(SYSTEM, "", "function.canary_rollback", audit.SUCCESS, module, **figures)
            except Exception:
                logger.exception("{}: could not record the canary rollback; the next sync retries", module)

        threading.Thread(target=end, name=f"canary-rollback-{module}", daemon=True).start()

    # -- what there is ---------------------------------------------------------------------------------------

    def describe(self, module: str) -> dict:
        pointer = store.pointer(module)
        deployment = self.registry.deployment(module)
        traffic = {str(pointer.active): 100 - (pointer.canary_pct if pointer.canary else 0)}
        if pointer.canary:
            traffic[str(pointer.canary)] = pointer.canary_pct
        here = {"stable": deployment.stable.number, "canary": deployment.canary.number if deployment.canary else None,
                "canary_error_rate": round(deployment.canary.error_rate(), 3) if deployment.canary else None,
                "canary_requests": len(deployment.canary.outcomes) if deployment.canary else None}
        return {"module": module, "functions": sorted(deployment.stable.specs), "active": pointer.active,
                "previous": pointer.previous, "canary": pointer.canary,
                "canary_pct": pointer.canary_pct if pointer.canary else 0, "traffic": traffic,
                "changed_by": pointer.changed_by, "changed_at": pointer.changed_at.isoformat() + "Z",
                "reason": pointer.reason, "this_process": here}

    def listing(self) -> list[dict]:
        return [self.describe(module) for module in sorted(self.registry.modules())]

    def history(self, name: str) -> dict:
        module = self.module_of(name)
        return {**self.describe(module), "versions": [store.describe(row) for row in store.history(module)]}

    def source(self, name: str, number: int) -> dict:
        module = self.module_of(name)
        row = store.version(module, number)
        if row is None:
            raise NotFound(f"{module} has no version {number}", code="unknown_version")
        return {"module": module, **store.describe(row), "source": row.source}
