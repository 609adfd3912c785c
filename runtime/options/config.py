"""``config``: values a function reads at run time (``config_of(request)``), declared beside the handler
and overridable per deploy (``python -m runtime deploy NAME --set config.KEY=VALUE``) without changing code.
``self_test``: a check a deployed version must pass before it becomes active (``runtime.deploy``)."""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from types import MappingProxyType

from starlette.requests import Request

from runtime.options import Call, Layer, bad

SCOPE_CONFIG = "ef.config"
_EMPTY: Mapping[str, object] = MappingProxyType({})


def config_of(request: Request) -> Mapping[str, object]:
    """The ``config`` values of the function (and version) serving ``request``."""
    return request.scope.get(SCOPE_CONFIG, _EMPTY)


class Config(Layer):
    options = {"config": "values handed to the handler (config_of(request)), a JSON object; a deploy may "
                         "override them"}

    def check(self, spec) -> None:
        value = spec.option("config")
        if value is None:
            return
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise bad(spec, "config", "must be a mapping of names to JSON values")
        try:
            json.dumps(dict(value))
        except (TypeError, ValueError):
            raise bad(spec, "config", "must hold JSON values only") from None

    def wrap(self, spec, call: Call) -> Call:
        value = spec.option("config")
        if not value:
            return call
        frozen = MappingProxyType(dict(value))

        async def configured(request):
            request.scope[SCOPE_CONFIG] = frozen
            return await call(request)

        return configured


class SelfTest(Layer):
    options = {"self_test": "async def check(client): run against this version alone before a deploy activates "
                            "it (client: an httpx.AsyncClient on its routes); raising refuses the deploy"}

    def check(self, spec) -> None:
        value = spec.option("self_test")
        if value is None:
            return
        if not callable(value) or len(inspect.signature(value).parameters) != 1:
            raise bad(spec, "self_test", "must be a function of one argument (an HTTP client)")
