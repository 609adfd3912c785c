"""The ``auth`` option's layer: who may call a function.

Levels:
- ``open``: anyone, whatever ``AUTH_MODE`` says: the liveness and readiness probes and the API docs.
- ``public``: anyone when ``AUTH_MODE=open``; with ``AUTH_MODE=api_key``, a valid API key (either level).
- ``key``: a valid API key, whatever ``AUTH_MODE`` says.
- ``admin``: a client address inside ``ADMIN_ALLOWED_CIDRS`` (checked first, whatever the credentials),
  and a logged-in admin session (its cookie; state-changing methods also need ``X-CSRF-Token``) or an API
  key of level ``admin``.
- ``lan``: a client address inside ``ADMIN_ALLOWED_CIDRS``, no credentials: the admin login itself.
- ``monitor``: a client address inside ``ADMIN_ALLOWED_CIDRS``, or an API key of level ``admin`` from
  anywhere (a Prometheus elsewhere): ``/metrics``.

Keys come as ``Authorization: Bearer <key>`` (what OpenAI clients and Home Assistant send) or ``X-API-Key``.
A missing or unknown key is 401 with ``WWW-Authenticate: Bearer``; a valid key without the level, or an
address outside the admin CIDRs, is 403. With ``AUTH_MODE=open`` a public function does not look at keys
at all (OpenAI clients send a placeholder key), so the caller is the client address. A recognised key makes
the caller ``key:<id>`` for queue fairness and rate limits (``runtime.callers``).
Admin and login answers carry security headers (CSP without scripts, nosniff, no framing, no referrer,
no caching).
"""

from __future__ import annotations

from dataclasses import dataclass

from loguru import logger
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from runtime.callers import SCOPE_KEY as CALLER
from runtime.errors import ApiError
from runtime.options import Call, Layer, bad
from runtime.security import Security, audit
from runtime.security.addresses import client_address, inside, parse_address
from runtime.security.keys import KeyInfo
from runtime.security.sessions import COOKIE, CSRF_HEADER, SECURE_COOKIE, SessionInfo

LEVELS = ("open", "public", "key", "admin", "lan", "monitor")
SCOPE_PRINCIPAL = "ef.principal"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
ADMIN_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class Principal:
    """Who a request authenticated as: an admin session or an API key."""

    actor: str  # admin:<name> or key:<id>
    level: str  # key | admin
    session: SessionInfo | None = None
    key: KeyInfo | None = None

    @property
    def admin_name(self) -> str | None:
        return self.session.admin if self.session else None


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str, code: str = "unauthorized") -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": 'Bearer realm="ef-speech"'})


class Forbidden(ApiError):
    status, code = 403, "forbidden"


def principal_of(request: Request) -> Principal | None:
    return request.scope.get(SCOPE_PRINCIPAL)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def session_token(request: Request) -> str | None:
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE)


class AuthLayer(Layer):
    options = {"auth": "who may call it: open (anyone, always), public (anyone AUTH_MODE allows), key (an API "
                       "key), admin (an admin session or admin key, from ADMIN_ALLOWED_CIDRS only), lan (anyone "
                       "from ADMIN_ALLOWED_CIDRS: the login), monitor (ADMIN_ALLOWED_CIDRS or an admin key: "
                       "metrics); default public"}

    def __init__(self, security: Security) -> None:
        self.security = security
        self.mode = security.settings.auth_mode

    def check(self, spec) -> None:
        if spec.auth not in LEVELS:
            raise bad(spec, "auth", f"must be one of {LEVELS}")

    def admits_anyone(self, spec) -> bool:
        return spec.auth == "open" or (spec.auth == "public" and self.mode == "open")

    def wrap(self, spec, call: Call) -> Call:
        level = spec.auth
        if self.admits_anyone(spec):
            return call

        async def guarded(request: Request):
            await self.authorise(request, level)
            response = await call(request)
            if level in ("admin", "lan"):
                for name, value in ADMIN_HEADERS.items():
                    response.headers.setdefault(name, value)
            return response

        return guarded

    async def authorise(self, request: Request, level: str) -> Principal | None:
        """Raise 401/403 unless the request may call a function of ``level``; returns who it is."""
        if level == "monitor":
            if inside(parse_address(client_address(request.scope)), self.security.admin_networks):
                return None
            principal = await self._identify(request, "key")
            if principal is None:
                raise Unauthorized("from outside ADMIN_ALLOWED_CIDRS, send an admin API key")
            if principal.level != "admin":
                raise Forbidden("metrics need an admin API key from outside the admin network",
                                code="admin_required")
            return principal
        if level in ("admin", "lan"):
            address = client_address(request.scope)
            if not inside(parse_address(address), self.security.admin_networks):
                logger.warning("refused {} {} from {}: outside ADMIN_ALLOWED_CIDRS", request.method,
                               request.url.path, address)
                if level == "lan":  # a login attempt from outside: audited like every login attempt
                    await run_in_threadpool(audit.record, "anonymous", address, "admin.login", audit.DENIED,
                                            reason="outside ADMIN_ALLOWED_CIDRS")
                raise Forbidden("admin functions answer only on the admin network (ADMIN_ALLOWED_CIDRS)",
                                code="admin_address_refused")
            if level == "lan":
                return None
        principal = await self._identify(request, level)
        if principal is None:
            if level == "admin":
                raise Unauthorized("log in (POST /api/admin/login) or send an admin API key", code="unauthorized")
            raise Unauthorized("send an API key: Authorization: Bearer <key> or X-API-Key", code="api_key_required")
        if level == "admin":
            if principal.level != "admin":
                raise Forbidden("this API key has level 'key'; admin functions need an admin key or session",
                                code="admin_required")
            if principal.session is not None and request.method not in SAFE_METHODS and \
                    not self.security.sessions.csrf_ok(principal.session, request.headers.get(CSRF_HEADER)):
                raise Forbidden("send the CSRF token from the login answer in the X-CSRF-Token header",
                                code="csrf_failed")
        request.scope[SCOPE_PRINCIPAL] = principal
        request.scope[CALLER] = principal.actor
        return principal

    async def _identify(self, request: Request, level: str) -> Principal | None:
        token = presented_key(request)
        if token is not None:
            keys = self.security.keys
            answered, info = keys.peek(token)  # no thread hop while the lookup is cached
            if not answered:
                info = await run_in_threadpool(keys.find, token)
            if info is None:
                raise Unauthorized("the API key is unknown, revoked or expired", code="invalid_api_key")
            return Principal(f"key:{info.id}", info.level, key=info)
        if level == "admin":
            cookie = session_token(request)
            if cookie:
                session = await run_in_threadpool(self.security.sessions.find, cookie)
                if session is None:
                    raise Unauthorized("the session has ended; log in again", code="session_expired")
                return Principal(f"admin:{session.admin}", "admin", session=session)
        return None


def actor_of(request: Request) -> str:
    """Who did it, for the audit log: ``admin:<name>``, ``key:<id>``, or ``anonymous``."""
    principal = principal_of(request)
    return principal.actor if principal else "anonymous"


def session_admin(request: Request) -> str:
    """The admin of the session making this request; 409 for an API key (keys have no TOTP or password)."""
    principal = principal_of(request)
    if principal is None or principal.session is None:
        raise ApiError("this needs an admin session (log in with a password); an API key cannot do it",
                       code="not_a_session", status=409)
    return principal.session.admin
