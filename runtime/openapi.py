"""The OpenAPI 3 document, assembled from what each function declares beside its handler
(``@function(..., openapi={...})``: an OpenAPI operation object). The runtime fills in what every function
shares: the operation id (the function's name), path parameters, and the error answers any function can
give (400/413/415 for bodies, 500, 504), all in the one ``Error`` shape. Shared schemas live here; a
function's own request and response schemas live in its module.
"""

from __future__ import annotations

import copy
import re
from importlib.metadata import PackageNotFoundError, version

from runtime.speech.audio import CONTENT_TYPES, FORMATS

ERROR_DESCRIPTIONS = {
    400: "Bad input: the `code` says which (e.g. `invalid_json`, `empty_text`, `unknown_voice`, `invalid_ssml`)",
    404: "Not found",
    413: "Request body too large (`body_too_large`)",
    415: "Wrong content type (`unsupported_media_type`)",
    429: "The synthesis queue is full (`queue_full`), or this caller has its most jobs waiting "
         "(`caller_queue_full`); `Retry-After` says when to retry",
    500: "Internal error (`internal_error`); the message names the request id to find in the log",
    502: "Every engine failed for this request (`synthesis_failed`)",
    503: "Unavailable: no worker, or the queue is unreachable (`no_workers`, `queue_unavailable`, `busy`)",
    504: "Not ready in time (`synthesis_timeout`, `timeout`); the job goes on",
    401: "No valid credentials (`api_key_required`, `invalid_api_key`, `unauthorized`, `session_expired`, "
         "`login_failed`, `totp_required`); `WWW-Authenticate: Bearer`",
    403: "Not allowed: outside ADMIN_ALLOWED_CIDRS (`admin_address_refused`), a key without the admin level "
         "(`admin_required`), or a missing CSRF token (`csrf_failed`)",
    409: "Conflicts with the current state (the `code` says which)",
}
RATE_LIMIT_DESCRIPTION = "Too many requests (`rate_limited`, `login_throttled`); `Retry-After` says when to retry"

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string", "description": "stable, machine-readable"},
                           "message": {"type": "string"}}}},
    },
    "Voice": {
        "type": "object", "required": ["id", "engine", "name", "language"],
        "properties": {"id": {"type": "string", "example": "piper:en_US-joe-medium"},
                       "engine": {"type": "string"}, "name": {"type": "string"},
                       "language": {"type": "string", "example": "en-US"},
                       "description": {"type": "string", "nullable": True}},
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "status_url", "audio_url", "voice", "format", "speed", "progress", "timings"],
        "properties": {
            "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "status_url": {"type": "string"},
            "audio_url": {"type": "string", "nullable": True, "description": "set once the job has succeeded"},
            "voice": {"type": "string"},
            "format": {"type": "string", "enum": list(FORMATS)},
            "speed": {"type": "number"},
            "characters": {"type": "integer"},
            "engine": {"type": "string", "nullable": True, "description": "the engine speaking or that spoke"},
            "fallback": {"type": "boolean"},
            "from_cache": {"type": "boolean"},
            "audio_seconds": {"type": "number", "nullable": True},
            "attempts": {"type": "integer"},
            "progress": {"type": "object", "properties": {
                "chunks_total": {"type": "integer"}, "chunks_done": {"type": "integer"},
                "chunks_cached": {"type": "integer"}}},
            "worker_id": {"type": "string", "nullable": True},
            "error": {"type": "string", "nullable": True},
            "timings": {"type": "object", "properties": {
                key: {"type": t, "nullable": True} for key, t in (
                    ("created_at", "string"), ("started_at", "string"), ("finished_at", "string"),
                    ("queued_s", "number"), ("synthesis_s", "number"))}},
        },
    },
}

SCHEMAS.update({
    "Admin": {"type": "object", "required": ["name", "disabled", "totp"], "properties": {
        "name": {"type": "string"}, "disabled": {"type": "boolean"}, "totp": {"type": "boolean"},
        "created_at": {"type": "string"}, "password_changed_at": {"type": "string"}}},
    "ApiKey": {"type": "object", "required": ["id", "name", "prefix", "level"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "prefix": {"type": "string", "description": "the key's first characters, to recognise it"},
        "level": {"type": "string", "enum": ["key", "admin"]}, "created_by": {"type": "string"},
        **{name: {"type": "string", "nullable": True}
           for name in ("created_at", "expires_at", "revoked_at", "last_used_at")}}},
    "AuditEvent": {"type": "object", "required": ["id", "at", "actor", "client", "action", "outcome"], "properties": {
        "id": {"type": "integer"}, "at": {"type": "string"}, "actor": {"type": "string"},
        "client": {"type": "string"}, "action": {"type": "string"}, "target": {"type": "string"},
        "outcome": {"type": "string"}, "details": {"type": "object"}}},
    "FunctionModule": {"type": "object", "required": ["module", "functions", "active", "traffic"], "properties": {
        "module": {"type": "string"}, "functions": {"type": "array", "items": {"type": "string"}},
        "active": {"type": "integer", "description": "the version serving"},
        "previous": {"type": "integer", "nullable": True, "description": "where a rollback returns to"},
        "canary": {"type": "integer", "nullable": True}, "canary_pct": {"type": "integer"},
        "traffic": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "version -> % of callers"},
        "changed_by": {"type": "string"}, "changed_at": {"type": "string"}, "reason": {"type": "string"},
        "this_process": {"type": "object", "description": "what the answering process serves, and the canary's "
                                                          "error rate as it counted"}}},
    "FunctionVersion": {"type": "object", "required": ["version", "sha256", "origin"], "properties": {
        "version": {"type": "integer"}, "sha256": {"type": "string"},
        "origin": {"type": "string", "enum": ["shipped", "deploy"]}, "created_by": {"type": "string"},
        "created_at": {"type": "string"}, "note": {"type": "string"}, "options": {"type": "object"}}},
})

SECURITY_SCHEMES = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "an API key: Authorization: Bearer efk_…"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "adminSession": {"type": "apiKey", "in": "cookie", "name": "ef_session",
                     "description": "from POST /api/admin/login (__Host-ef_session over HTTPS)"},
    "csrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                  "description": "the login answer's csrf_token; state-changing requests with the cookie send it"},
}


def security_of(level: str, method: str, auth_mode: str) -> list[dict] | None:
    """The OpenAPI security requirement of a function of ``level`` (None: no credentials)."""
    keys = [{"bearerKey": []}, {"apiKeyHeader": []}]
    if level == "admin":
        session = {"adminSession": []} if method in ("GET", "HEAD") else {"adminSession": [], "csrfToken": []}
        return [session, *keys]
    if level in ("key", "monitor") or (level == "public" and auth_mode == "api_key"):
        return keys
    return None


def admin_operation(summary: str, level: str, body: dict | None = None, answer: dict | None = None, ok: str = "200",
                    statuses: tuple[int, ...] = (), parameters: list[dict] | None = None) -> dict:
    """The OpenAPI operation of an admin function (tag Admin; its 401/403 come from its auth level)."""
    op: dict = {"summary": summary, "tags": ["Admin"],
                "responses": {ok: json_content(answer or {"type": "object"}, summary),
                              **{str(s): error(s, RATE_LIMIT_DESCRIPTION if s == 429 else None) for s in statuses}}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if parameters:
        op["parameters"] = parameters
    return op


# Response headers of audio answers
AUDIO_HEADERS = {
    "X-TTS-Engine": {"description": "the engine that spoke", "schema": {"type": "string"}},
    "X-TTS-Fallback": {"description": "true when a fallback engine spoke", "schema": {"type": "string",
                                                                                     "enum": ["true", "false"]}},
    "X-Cache": {"description": "hit: served from the audio cache", "schema": {"type": "string",
                                                                             "enum": ["hit", "miss"]}},
}


def error(status: int, description: str | None = None) -> dict:
    return {"description": description or ERROR_DESCRIPTIONS.get(status) or RATE_LIMIT_DESCRIPTION,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def errors(*statuses: int) -> dict:
    return {str(status): error(status) for status in statuses}


def json_content(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def audio_content(description: str, formats: tuple[str, ...] = FORMATS) -> dict:
    types = dict.fromkeys(CONTENT_TYPES[f] for f in formats)
    return {"description": description, "headers": AUDIO_HEADERS,
            "content": {ctype: {"schema": {"type": "string", "format": "binary"}} for ctype in types}}


def text_content(description: str) -> dict:
    return {"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}


_PATH_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def document(specs, settings, title: str = "ef speech functions", rate_limited=lambda spec: False) -> dict:
    """The whole document for the active function specs (those with ``openapi=False`` are left out).
    ``rate_limited(spec)`` says whether a function answers 429 ``rate_limited``."""
    paths: dict[str, dict] = {}
    for spec in sorted(specs, key=lambda s: s.route):
        if spec.openapi is False:
            continue
        route = _PATH_PARAM.sub(r"{\1}", spec.route)
        for method in spec.methods:
            if method == "HEAD":
                continue
            declared_op = spec.openapi(settings) if callable(spec.openapi) else spec.openapi
            op = copy.deepcopy(declared_op or {})
            op.setdefault("operationId", spec.name if len(spec.methods) == 1 else f"{spec.name}_{method.lower()}")
            if not op.get("summary") and spec.handler.__doc__:
                op["summary"] = spec.handler.__doc__.strip().splitlines()[0]
            params = op.setdefault("parameters", [])
            declared = {(p["in"], p["name"]) for p in params}
            for name in _PATH_PARAM.findall(spec.route):
                if ("path", name) not in declared:
                    params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
            if not params:
                del op["parameters"]
            if method == "GET":
                op.pop("requestBody", None)
            responses = op.setdefault("responses", {})
            shared = (400, 413, 415, 500, 504) if method in ("POST", "PUT", "PATCH") else (500, 504)
            for status in shared:
                responses.setdefault(str(status), error(status))
            security = security_of(spec.auth, method, settings.auth_mode)
            if security is not None:
                op["security"] = security
                responses.setdefault("401", error(401))
            if (security is not None and spec.auth != "public") or spec.auth == "lan":
                responses.setdefault("403", error(403))
            if rate_limited(spec):
                responses.setdefault("429", error(429, RATE_LIMIT_DESCRIPTION))
            paths.setdefault(route, {})[method.lower()] = op
    try:
        release = version("ef-speech-functions")
    except PackageNotFoundError:
        release = "0.1.0"
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": release,
                 "description": "Self-hosted speech synthesis: OpenAI- and MaryTTS-compatible routes, jobs, "
                                "cached audio. Every error is JSON: `{\"error\": {\"code\", \"message\"}}`."},
        "tags": [{"name": "OpenAI", "description": "OpenAI-compatible speech"},
                 {"name": "Jobs", "description": "Synthesis jobs, long text"},
                 {"name": "Audio", "description": "Cached audio files"},
                 {"name": "Voices"}, {"name": "MaryTTS", "description": "Home Assistant's marytts platform"},
                 {"name": "Health"}, {"name": "Admin", "description": "LAN-only, logged in, audited"}],
        "paths": paths,
        "components": {"schemas": copy.deepcopy(SCHEMAS), "securitySchemes": copy.deepcopy(SECURITY_SCHEMES)},
    }
