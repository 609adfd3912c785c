"""Function discovery: modules load fresh under unique names; bad declarations are rejected clearly."""

from __future__ import annotations

import textwrap

import pytest
from starlette.testclient import TestClient

from runtime.app import Edge
from runtime.functions import FunctionDefinitionError, function
from runtime.options import default_layers
from runtime.registry import Deployment, Registry, discover, load_module
from runtime.router import FunctionRouter
from runtime.settings import Settings

HANDLER = '''
from runtime.functions import function
from runtime.http import json_response

@function(route="{route}", methods=["GET"]{extra})
async def {name}(request, ctx):
    return json_response({{"from": "{name}"}})
'''


def layers(max_body: int = 1000):
    return default_layers(Settings().with_(max_body_bytes=max_body))


def write(directory, filename, route="/x", name="x", extra=""):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / filename).write_text(HANDLER.format(route=route, name=name, extra=extra))


def test_discovers_modules_and_subpackages(tmp_path):
    write(tmp_path, "one.py", "/one", "one")
    write(tmp_path / "admin", "users.py", "/admin/users", "users")
    write(tmp_path, "_helper.py", "/helper", "helper")
    modules = discover(tmp_path)
    assert sorted(m.name for m in modules) == ["admin.users", "one"]
    assert all(m.module_name.startswith(f"ef_functions.{m.name}.v") for m in modules)
    assert Registry(modules, layers()).names() == ["one", "users"]


def test_duplicate_function_names_are_rejected(tmp_path):
    write(tmp_path, "a.py", "/a", "same")
    write(tmp_path, "b.py", "/b", "same")
    with pytest.raises(FunctionDefinitionError, match="declared twice"):
        Registry(discover(tmp_path), layers())


def test_duplicate_routes_are_rejected(tmp_path):
    write(tmp_path, "a.py", "/same", "a")
    write(tmp_path, "b.py", "/same", "b")
    with pytest.raises(FunctionDefinitionError, match="GET /same is served by both"):
        Registry(discover(tmp_path), layers())


def test_unknown_options_are_rejected_with_the_known_ones(tmp_path):
    write(tmp_path, "a.py", "/a", "a", extra=", timeot_s=3")
    with pytest.raises(FunctionDefinitionError, match=r"unknown option\(s\) \['timeot_s'\].*timeout_s"):
        Registry(discover(tmp_path), layers())


def test_an_option_exists_only_while_a_layer_claims_it(tmp_path):
    """The layers own the options: without the rate-limit layer, rate_limit is an unknown option."""
    write(tmp_path, "a.py", "/a", "a", extra=", rate_limit='5/minute'")
    assert Registry(discover(tmp_path), layers()).names() == ["a"]
    without = [layer for layer in layers() if "rate_limit" not in layer.options]
    with pytest.raises(FunctionDefinitionError, match=r"unknown option\(s\) \['rate_limit'\]"):
        Registry(discover(tmp_path), without)


def test_module_without_function_is_rejected(tmp_path):
    (tmp_path / "empty.py").write_text("X = 1\n")
    with pytest.raises(FunctionDefinitionError, match="declares no @function"):
        discover(tmp_path)


@pytest.mark.parametrize(("options", "message"), [
    ({"route": "no-slash"}, "route"),
    ({"route": "/x", "methods": ["FETCH"]}, "bad methods"),
])
def test_bad_core_option_values(options, message):
    with pytest.raises(FunctionDefinitionError, match=message):
        function(**options)


@pytest.mark.parametrize(("extra", "message"), [
    (", auth='everyone'", "auth must be one of"),
    (", timeout_s=0", "timeout_s must be a positive number"),
    (", concurrency=-1", "concurrency must be >= 0"),
    (", max_body='big'", "max_body must be a byte count"),
    (", rate_limit='lots'", "rate_limit must be a limit"),
    (", openapi=3", "openapi must be"),
])
def test_bad_option_values_are_refused_by_their_layer(tmp_path, extra, message):
    write(tmp_path, "a.py", "/a", "a", extra=extra)
    with pytest.raises(FunctionDefinitionError, match=message):
        Registry(discover(tmp_path), layers())


def test_sync_handlers_are_rejected():
    with pytest.raises(FunctionDefinitionError, match="async def"):
        function(route="/x")(lambda request, ctx: None)


def test_endpoints_follow_the_active_pointer_and_enforce_limits(tmp_path):
    (tmp_path / "slow.py").write_text(textwrap.dedent('''
        import asyncio
        from runtime.functions import function
        from runtime.http import json_response, read_json

        @function(route="/slow", methods=["POST"], timeout_s=0.2, max_body=100)
        async def slow(request, ctx):
            body = await read_json(request)
            await asyncio.sleep(body.get("sleep", 0))
            return json_response({"version": 1})
    '''))
    registry = Registry(discover(tmp_path), layers())
    app = Edge(FunctionRouter(registry.table(ctx=None), follow=registry))
    with TestClient(app) as c:
        assert c.post("/slow", json={}).json() == {"version": 1}
        timed_out = c.post("/slow", json={"sleep": 1})
        assert timed_out.status_code == 504 and timed_out.json()["error"]["code"] == "timeout"
        too_big = c.post("/slow", json={"pad": "x" * 200})
        assert too_big.status_code == 413
        wrong_method = c.get("/slow")
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
        assert c.get("/nothing").json()["error"]["code"] == "not_found"

        # Moving the pointer to another loaded version changes the answers; the router keeps its table.
        (tmp_path / "v2").mkdir()
        (tmp_path / "v2" / "slow.py").write_text((tmp_path / "slow.py").read_text().replace('"version": 1',
                                                                                          '"version": 2'))
        version = registry.build(load_module(tmp_path / "v2" / "slow.py", "slow", unique=True), 2)
        registry.check(version)
        generation = registry.generation
        registry.activate(Deployment(version))
        assert c.post("/slow", json={}).json() == {"version": 2}
        assert registry.generation == generation  # same routes: no rebuild
        registry.activate(Deployment(registry.loaded("slow", 1)))
        assert c.post("/slow", json={}).json() == {"version": 1}


def test_the_shipped_functions_load():
    from runtime.app import FUNCTIONS_DIR

    names = Registry(discover(FUNCTIONS_DIR), layers(64_000)).names()
    assert {"openai_speech", "synthesize", "job_status", "cached_audio", "voices", "health", "healthz",
            "readyz"} <= set(names)


def test_unexpected_errors_become_json_500_without_traceback(tmp_path):
    (tmp_path / "boom.py").write_text(textwrap.dedent('''
        from runtime.functions import function

        @function(route="/boom/{n:int}")
        async def boom(request, ctx):
            raise KeyError(request.path_params["n"])
    '''))
    app = Edge(FunctionRouter(Registry(discover(tmp_path), layers()).table(ctx=None)))
    with TestClient(app, raise_server_exceptions=False) as c:
        resp = c.get("/boom/7", headers={"x-request-id": "trace-me"})
        assert resp.status_code == 500
        assert resp.json()["error"]["code"] == "internal_error"
        assert "trace-me" in resp.json()["error"]["message"] and "Traceback" not in resp.text
        assert c.get("/boom/notanint").status_code == 404  # the int convertor does not match


def test_a_rewritten_file_runs_its_new_code_even_within_the_same_second(tmp_path, monkeypatch):
    """Same size, same mtime second: a __pycache__ entry would pass for the new source; the registry runs
    the bytes it hashed."""
    import os
    import sys

    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a machine without PYTHONDONTWRITEBYTECODE

    write(tmp_path, "a.py", "/a", "aaaa")
    first = discover(tmp_path)[0]
    stamp = (tmp_path / "a.py").stat().st_mtime_ns
    write(tmp_path, "a.py", "/a", "bbbb")
    os.utime(tmp_path / "a.py", ns=(stamp, stamp))
    second = discover(tmp_path)[0]
    assert first.sha256 != second.sha256
    assert [s.name for s in second.specs] == ["bbbb"]
