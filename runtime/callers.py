"""Who is calling: the identity that per-caller fairness counts jobs against.

The hook for API keys: an authentication layer puts the key's id into the ASGI scope as
``scope["ef.caller"] = "key:<id>"``; without one, the caller is the client address (``ip:<address>``).
Nothing else in the speech path needs to change when keys arrive.
"""

from __future__ import annotations

from starlette.requests import Request

SCOPE_KEY = "ef.caller"


def caller_of(request: Request) -> str:
    explicit = request.scope.get(SCOPE_KEY)
    if explicit:
        return str(explicit)[:200]
    client = request.scope.get("client")
    return f"ip:{client[0]}" if client else "ip:unknown"
