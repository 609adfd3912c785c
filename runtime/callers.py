"""Who is calling: the identity that per-caller fairness and rate limits count against.

The ``auth`` layer puts a recognised API key into the ASGI scope as ``scope["ef.caller"] = "key:<id>"``
(an admin session as ``admin:<name>``); otherwise the caller is the client address, ``ip:<address>``, as
the one address rule computed it (``runtime.security.addresses``: forwarded headers count only from
trusted proxies).
"""

from __future__ import annotations

from starlette.requests import Request

from runtime.security.addresses import client_address

SCOPE_KEY = "ef.caller"


def caller_of(request: Request) -> str:
    explicit = request.scope.get(SCOPE_KEY)
    if explicit:
        return str(explicit)[:200]
    return f"ip:{client_address(request.scope)}"
