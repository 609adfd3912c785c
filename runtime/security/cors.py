"""CORS as an allowlist (``CORS_ORIGINS``, none by default): a browser page from a listed origin may call
the functions; any other origin gets no CORS headers, so the browser keeps the answer from it. Preflight
requests (``OPTIONS`` with ``Access-Control-Request-Method``) are answered here. Credentials (the admin
cookie) are never allowed cross-origin: the admin area is same-origin only."""

from __future__ import annotations

ALLOWED_HEADERS = b"authorization, content-type, x-api-key, x-request-id"
EXPOSED_HEADERS = (b"x-tts-engine, x-tts-fallback, x-cache, x-job-id, x-request-id, retry-after, "
                   b"ratelimit-limit, ratelimit-remaining, ratelimit-reset")


class Cors:
    def __init__(self, app, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = {origin.encode() for origin in origins}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is None or origin not in self.origins:
            return await self.app(scope, receive, send)
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send({"type": "http.response.start", "status": 204, "headers": [
                (b"access-control-allow-origin", origin), (b"vary", b"Origin"),
                (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE"),
                (b"access-control-allow-headers", ALLOWED_HEADERS), (b"access-control-max-age", b"600")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"access-control-allow-origin", origin), (b"vary", b"Origin"),
                                                  (b"access-control-expose-headers", EXPOSED_HEADERS)]}
            await send(message)

        await self.app(scope, receive, with_cors)
