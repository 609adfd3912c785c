"""``create_app(settings)``: the ASGI app that serves the function modules in ``functions/``.

The app owns the edges: JSON errors for every failure (``{"error": {"code", "message"}}``, never a stack
trace), a request id on every response and log line, an access log line per request, and the lifespan
that builds the process's services. Routing is ``runtime.router.FunctionRouter``.
"""

from __future__ import annotations

import itertools
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path

from loguru import logger

from runtime import logging as runtime_logging
from runtime.errors import ApiError, StreamAborted
from runtime.http import json_response
from runtime.options import default_layers
from runtime.registry import SCOPE_PIN, CanaryPolicy, Registry, discover
from runtime.response_cache import ResponseCache
from runtime.router import FunctionRouter
from runtime.security import Security
from runtime.security.addresses import AddressRule, client_address, inside, parse_address
from runtime.security.cors import Cors
from runtime.services import Services
from runtime.settings import Settings, loose_env_file

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
_CONDITIONAL = frozenset((b"range", b"if-range", b"if-none-match", b"if-modified-since", b"if-match",
                          b"if-unmodified-since"))


class Context:
    """What a function handler gets as ``ctx``: the process's services, filled in at start-up."""

    def __init__(self, settings: Settings, registry: Registry, security: Security) -> None:
        self.settings = settings
        self.registry = registry
        self.security = security
        self.services: Services | None = None
        self.deployments = None  # runtime.deploy.deployer.Deployments

    def __getattr__(self, name: str):
        # ctx.speech, ctx.catalog, ctx.audio, … delegate to the services once they exist
        services = self.__dict__.get("services")
        if services is None:
            raise AttributeError(name)
        return getattr(services, name)


class Edge:
    """Pure ASGI around the router: request id in (``X-Request-ID``, if sane) and out, errors as JSON,
    one access log line per request (``ACCESS_LOG``), the client address computed once
    (``runtime.security.addresses``). The micro-cache answers here only for functions that refuse no one."""

    def __init__(self, app, access_log: bool = True, responses: ResponseCache | None = None,
                 addresses: AddressRule | None = None) -> None:
        self.app = app
        self.access_log = access_log
        self.responses = responses
        self.addresses = addresses or AddressRule()
        # Request ids: a random per-process prefix + a counter (unique without a syscall per request)
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = ""
        conditional = False
        for name, value in scope["headers"]:
            if name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
                candidate = value.decode("ascii")
                if candidate.isprintable() and " " not in candidate:
                    rid = candidate
            elif name in _CONDITIONAL:
                conditional = True
            elif name == b"x-function-version":  # an admin calling one version directly (runtime.registry)
                scope[SCOPE_PIN] = value.decode("latin-1").strip()
        rid = rid or f"{self._prefix}{next(self._counter) & 0xFFFFFFFF:08x}"
        if (self.responses is not None and not conditional and SCOPE_PIN not in scope
                and scope["method"] in ("GET", "HEAD")
                and not scope["query_string"]):
            hit = self.responses.get(scope["path"])
            if hit is not None:
                await send({"type": "http.response.start", "status": hit.status,
                            "headers": [*hit.raw_headers, (b"x-request-id", rid.encode())]})
                await send({"type": "http.response.body", "body": hit.body})
                if self.access_log:
                    logger.bind(request_id=rid).info("{} {} {} cached", scope["method"], scope["path"], hit.status)
                return
        self.addresses.resolve(scope)
        token = runtime_logging.request_id.set(rid)
        function_token = runtime_logging.function.set("")
        status = 0
        start = time.perf_counter()

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except (ApiError, StreamAborted) as exc:
            if status:  # raised mid-body (a stream): the headers are out, so end without the final chunk
                logger.warning("{} {}: stream aborted: {}", scope["method"], scope["path"], exc)
            elif isinstance(exc, ApiError):
                await json_response(exc.body(), exc.status, exc.headers)(scope, receive, send_with_id)
            else:
                raise
        except Exception:
            logger.exception("unhandled error in {} {}", scope["method"], scope["path"])
            if status:
                raise
            body = {"error": {"code": "internal_error",
                              "message": f"internal error; the log has details under request id {rid}"}}
            await json_response(body, 500)(scope, receive, send_with_id)
        finally:
            if self.access_log:
                logger.info("{} {} {} {:.1f}ms", scope["method"], scope["path"], status,
                            (time.perf_counter() - start) * 1000)
            runtime_logging.function.reset(function_token)
            runtime_logging.request_id.reset(token)


def create_app(settings: Settings | None = None, functions_dir: Path = FUNCTIONS_DIR) -> Edge:
    from runtime.deploy.deployer import Deployments
    from runtime.deploy.sync import FunctionSync

    settings = settings or Settings.from_env()
    responses = ResponseCache(settings.memory_cache_bytes)
    security = Security(settings)
    shipped = discover(functions_dir)
    registry = Registry(shipped, default_layers(settings, security), responses,
                        CanaryPolicy(settings.canary_window, settings.canary_min_requests,
                                     settings.canary_max_error_rate),
                        may_pin=lambda scope: inside(parse_address(client_address(scope)), security.admin_networks))
    ctx = Context(settings, registry, security)
    deployments = ctx.deployments = Deployments(settings, registry, shipped)

    @asynccontextmanager
    async def lifespan(_app):
        if warning := loose_env_file():
            logger.warning(warning)
        services = Services.build(settings, responses)
        ctx.services = services
        deployments.start_up()  # the versions the database says serve, before the first request
        sync = FunctionSync(deployments, settings.function_sync_s).start()
        wyoming = None
        if settings.wyoming_listen is not None:
            from runtime.wyoming.server import WyomingServer

            wyoming = await WyomingServer(settings, services).start()
        announcer = None
        if wyoming is not None and settings.wyoming_zeroconf != "off":
            from runtime.wyoming.discovery import Announcer, instance_name

            announcer = await Announcer(instance_name(settings.wyoming_zeroconf), wyoming.host, wyoming.port).start()
        scheduler = None
        if settings.embedded:
            from scheduler.runner import Scheduler

            services.start_worker(load_in_background=True)
            scheduler = Scheduler(settings, services)
            scheduler.start()
        else:
            services.events.start_listening()
            services.recover()
        logger.info("serving {} function(s): {}", len(registry.names()), ", ".join(registry.names()))
        try:
            yield
        finally:
            if announcer is not None:
                await announcer.stop()
            if wyoming is not None:
                await wyoming.stop()
            services.stop_worker()  # first: no queued job starts while the rest shuts down
            sync.stop()
            if scheduler is not None:
                scheduler.stop()  # releases the lease
            security.keys.flush_uses()  # the API keys' last use, batched in memory
            services.close()

    router = FunctionRouter(registry.table(ctx), lifespan=lifespan, follow=registry)
    app = Edge(Cors(router, settings.cors_origins) if settings.cors_origins else router,
               access_log=settings.access_log, responses=responses, addresses=security.addresses)
    app.ctx = ctx
    return app
