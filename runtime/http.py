"""Small helpers function modules use to read requests and write responses."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from runtime.errors import InvalidInput, UnsupportedMediaType


async def read_json(request: Request) -> object:
    """The request's JSON body. 415 unless the content type is JSON; 400 ``invalid_json`` if unparsable."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json (got {ctype or 'no content type'})")
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}", code="invalid_json") from None


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def query_int(params, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """A whole-number query parameter within [lo, hi]; 400 ``invalid_query`` otherwise."""
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidInput(f"{name} is a whole number from {lo} to {hi}", code="invalid_query")
    return int(raw)
