"""``openapi``: the function's OpenAPI operation (``runtime.openapi`` assembles the document from it)."""

from __future__ import annotations

from runtime.options import Layer, bad


class Documented(Layer):
    options = {"openapi": "its OpenAPI operation (dict: summary, parameters, requestBody, responses), or a "
                          "function of the settings that returns one; False leaves it out"}

    def check(self, spec) -> None:
        value = spec.option("openapi")
        if value is not None and value is not False and not isinstance(value, dict) and not callable(value):
            raise bad(spec, "openapi", "must be an operation dict, a function of the settings returning one, or False")
