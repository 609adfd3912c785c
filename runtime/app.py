"""``create_app(settings)``: the Starlette app that mounts the function modules in ``functions/``.

The app owns the edges: JSON errors for every failure (``{"error": {"code", "message"}}``, never a stack
trace), a request id on every response and log line, and the lifespan that builds the process's services.
"""

from __future__ import annotations

import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from loguru import logger
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from runtime import logging as runtime_logging
from runtime.errors import ApiError
from runtime.http import json_response
from runtime.registry import Registry, discover
from runtime.services import Services
from runtime.settings import Settings

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 400: "bad_request"}


class Context:
    """What a function handler gets as ``ctx``: the process's services, filled in at start-up."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        self.services: Services | None = None

    def __getattr__(self, name: str):
        # ctx.speech, ctx.catalog, ctx.audio, … delegate to the services once they exist
        services = self.__dict__.get("services")
        if services is None:
            raise AttributeError(name)
        return getattr(services, name)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(exc.body(), exc.status, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if exc.status_code != 404 else f"no function serves {request.url.path}"
    return json_response({"error": {"code": code, "message": message}}, exc.status_code, dict(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> Response:
    rid = runtime_logging.request_id.get()
    logger.opt(exception=exc).error("unhandled error in {} {}", request.method, request.url.path)
    return json_response({"error": {"code": "internal_error",
                                    "message": f"internal error; the log has details under request id {rid}"}}, 500)


class _RequestContext:
    """Pure ASGI (cheap): request id in, ``x-request-id`` out, one access log line per request."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
                rid = value.decode()
        rid = rid or uuid.uuid4().hex[:16]
        token = runtime_logging.request_id.set(rid)
        status = 0
        start = time.perf_counter()

        async def send_with_id(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            logger.info("{} {} {} {:.1f}ms", scope["method"], scope["path"], status,
                        (time.perf_counter() - start) * 1000)
            runtime_logging.request_id.reset(token)


def create_app(settings: Settings | None = None, functions_dir: Path = FUNCTIONS_DIR) -> Starlette:
    settings = settings or Settings.from_env()
    registry = Registry(discover(functions_dir), settings.max_body_bytes)
    ctx = Context(settings, registry)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        services = Services.build(settings)
        ctx.services = services
        if settings.embedded:
            services.start_worker(load_in_background=True)
        else:
            services.events.start_listening()
            services.recover()
        logger.info("serving {} function(s): {}", len(registry.names()), ", ".join(registry.names()))
        try:
            yield
        finally:
            services.close()

    app = Starlette(routes=registry.routes(ctx), lifespan=lifespan,
                    exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal_error})
    app.state.ctx = ctx
    app.add_middleware(_RequestContext)
    return app
