"""Function deploys in one process: versions stored and activated, broken versions refused, canaries split
per caller and rolled back by their error rate, pinned calls, shipped upgrades, and the options that must
hold for a whole (streamed) response."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from starlette.testclient import TestClient

from runtime.app import Edge
from runtime.deploy import versions as store
from runtime.deploy.deployer import Deployments
from runtime.deploy.versions import DeployRefused
from runtime.options import default_layers
from runtime.registry import CanaryPolicy, Registry, discover
from runtime.response_cache import ResponseCache
from runtime.router import FunctionRouter
from runtime.security import Security
from runtime.settings import Settings
from storage.db import open_database
from storage.migrations import migrate
from storage.models import AuditEvent

GREET = '''
from runtime.functions import function
from runtime.http import json_response
from runtime.options.config import config_of

@function(route="/greet", methods=["GET"], config={{"greeting": "hello"}})
async def greet(request, ctx):
    return json_response({{"v": {v}, "greeting": config_of(request)["greeting"]}})
'''
OTHER = '''
from runtime.functions import function
from runtime.http import json_response

@function(route="/other", methods=["GET"])
async def other(request, ctx):
    return json_response({"other": True})
'''
STREAM = '''
import asyncio
from starlette.responses import StreamingResponse
from runtime.functions import function

@function(route="/stream", methods=["GET"], timeout_s=0.6, concurrency=1)
async def stream(request, ctx):
    pause = float(request.query_params.get("pause", "0.05"))

    async def body():
        for i in range(6):
            yield f"part {i}\\n".encode()
            await asyncio.sleep(pause)
    return StreamingResponse(body(), media_type="text/plain")
'''


def greet(v: int | str, extra: str = "") -> str:
    return GREET.format(v=v) + extra


def with_self_test(source: str, body: str) -> str:
    """``source`` with ``self_test=check``, ``check(client)`` running ``body``, defined before the handler."""
    check = "async def check(client):\n" + textwrap.indent(textwrap.dedent(body), "    ") + "\n"
    head, sep, rest = source.partition("@function(")
    return head + check + "\n" + sep + rest.replace('config={"greeting": "hello"}',
                                                    'config={"greeting": "hello"}, self_test=check', 1)


class Harness:
    """A process as the service builds it (registry, deploys, edge) over a function directory and a database."""

    def __init__(self, tmp_path, files: dict[str, str], **settings) -> None:
        self.dir = tmp_path / "functions"
        self.dir.mkdir(exist_ok=True)
        for name, text in files.items():
            (self.dir / name).write_text(text)
        data = tmp_path / "data"
        self.settings = Settings().with_(data_dir=data, database_url=f"sqlite:///{data}/db.sqlite", **settings)
        migrate(open_database(self.settings.database_url))
        self.start()

    def start(self) -> Harness:
        s = self.settings
        self.responses = ResponseCache(1 << 20)
        self.shipped = discover(self.dir)
        self.registry = Registry(self.shipped, default_layers(s, Security(s)), self.responses,
                                 CanaryPolicy(s.canary_window, s.canary_min_requests, s.canary_max_error_rate),
                                 may_pin=lambda scope: scope["client"][0] == "127.0.0.1")
        self.deployments = Deployments(s, self.registry, self.shipped)
        self.deployments.start_up()
        self.app = Edge(FunctionRouter(self.registry.table(object()), follow=self.registry), access_log=False,
                        responses=self.responses)
        return self

    def client(self, address: str = "127.0.0.1") -> TestClient:
        return TestClient(self.app, client=(address, 40000), raise_server_exceptions=False)

    def deploy(self, name: str, source: str | None, **kwargs) -> dict:
        import asyncio

        return asyncio.run(self.deployments.deploy(name, source, "test", "127.0.0.1", **kwargs))

    def pointer(self, module: str):
        return store.pointer(module)


def audits(action: str) -> list[AuditEvent]:
    return list(AuditEvent.select().where(AuditEvent.action == action).order_by(AuditEvent.id))


def test_shipped_files_are_version_one_and_a_deploy_is_a_pointer_move(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1), "other.py": OTHER})
    assert [(v.version, v.origin) for v in store.history("greet")] == [(1, "shipped")]
    with h.client() as c:
        assert c.get("/greet").json() == {"v": 1, "greeting": "hello"}
        done = h.deploy("greet", greet(2), note="second")
        assert (done["version"], done["active"], done["created"]) == (2, 2, True)
        assert c.get("/greet").json()["v"] == 2  # the next request, no restart
        row = store.version("greet", 2)
        assert (row.source, row.note, row.created_by, row.origin) == (greet(2), "second", "test", "deploy")
        assert row.sha256 == store.sha256(greet(2))
        # the same source again is the same version (no new row), and already serving
        assert h.deploy("greet", greet(2))["changed"] is False
        # by a function's name as well as the module's; options overridden per deploy, without new code
        done = h.deploy("greet", None, overrides={"config": {"greeting": "hi"}})
        assert done["version"] == 3 and c.get("/greet").json() == {"v": 2, "greeting": "hi"}
        back = h.deployments.rollback("greet", "test", "127.0.0.1")
        assert back["active"] == 2 and c.get("/greet").json() == {"v": 2, "greeting": "hello"}
        assert h.deployments.rollback("greet", "test", "127.0.0.1", to=1)["active"] == 1
        assert c.get("/greet").json()["v"] == 1
        assert c.get("/other").json() == {"other": True}  # the other module never moved
    assert [e.outcome for e in audits("function.deploy")] == ["success"] * 2  # the no-op is not a change
    assert len(audits("function.rollback")) == 2


BROKEN = {
    "syntax error": (greet(2).replace("async def greet", "async def greet("), "load_failed", "SyntaxError"),
    "import error": ("import no_such_module_here\n" + greet(2), "load_failed", "no_such_module_here"),
    "error at import": (greet(2) + "\nraise RuntimeError('boom at import')\n", "load_failed", "boom at import"),
    "missing handler": ("X = 1\n", "invalid_function", "declares no @function"),
    "removed function": (OTHER.replace('route="/other"', 'route="/greet"').replace("def other", "def renamed"),
                         "missing_function", "does not declare greet"),
    "bad option": (greet(2).replace('methods=["GET"]', 'methods=["GET"], timeout_s=-1'), "invalid_function",
                   "timeout_s must be a positive number"),
    "unknown option": (greet(2).replace('methods=["GET"]', 'methods=["GET"], timeot_s=3'), "invalid_function",
                       "unknown option"),
    "route collision": (greet(2).replace('route="/greet"', 'route="/other"'), "route_collision",
                        "GET /other is served by both 'other' and 'greet'"),
    "name collision": (greet(2) + OTHER.split("\n", 4)[-1].replace('"/other"', '"/other2"'), "route_collision",
                       "'other' is declared twice"),
    "failing self-test": (with_self_test(greet(2), """
                              r = await client.get('/greet')
                              assert r.json()['v'] == 3, 'wrong version'"""), "self_test_failed", "wrong version"),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_each_kind_of_broken_version_is_refused_and_the_old_one_keeps_serving(tmp_path, kind):
    source, code, message = BROKEN[kind]
    h = Harness(tmp_path, {"greet.py": greet(1), "other.py": OTHER})
    with h.client() as c:
        with pytest.raises(DeployRefused) as refused:
            h.deploy("greet", source)
        assert refused.value.code == code and message in refused.value.message, refused.value.message
        assert c.get("/greet").json()["v"] == 1
        assert [v.version for v in store.history("greet")] == [1]
        assert h.pointer("greet").active == 1 and h.pointer("greet").generation == 1
    failure = audits("function.deploy")[-1]
    assert failure.outcome == "failure" and json.loads(failure.details)["code"] == code


def test_a_passing_self_test_runs_against_the_new_version_alone(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1)})
    seen = tmp_path / "self-test-saw"
    source = with_self_test(greet(2), f"""
        r = await client.get('/greet')
        open({str(seen)!r}, 'w').write(r.text)
        assert r.json()['v'] == 2""")
    assert h.deploy("greet", source)["active"] == 2
    assert json.loads(seen.read_text())["v"] == 2


def test_a_deploy_may_move_a_route_to_a_free_one_and_add_a_function(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1), "other.py": OTHER})
    moved = greet(2).replace('route="/greet"', 'route="/hello"') + textwrap.dedent('''
        @function(route="/greet/extra", methods=["GET"])
        async def extra(request, ctx):
            return json_response({"extra": True})
    ''')
    with h.client() as c:
        h.deploy("greet", moved)
        assert c.get("/hello").json()["v"] == 2 and c.get("/greet/extra").json() == {"extra": True}
        assert c.get("/greet").status_code == 404
        h.deployments.rollback("greet", "test", "127.0.0.1")
        assert c.get("/greet").json()["v"] == 1 and c.get("/greet/extra").status_code == 404


def test_a_canary_takes_its_share_of_callers_each_caller_stays_on_one_version_and_promote_makes_it_all(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1)})
    with h.client() as c:
        h.deploy("greet", greet(2), canary=30)
        assert (h.pointer("greet").active, h.pointer("greet").canary) == (1, 2)
        seen = {}
        for caller in range(200):
            key = {"X-API-Key": f"caller-{caller}"}  # AUTH_MODE=open: keys only tell callers apart
            answers = {c.get("/greet", headers=key).json()["v"] for _ in range(3)}
            assert len(answers) == 1, f"caller {caller} flipped between versions {answers}"
            seen[caller] = answers.pop()
        share = sum(v == 2 for v in seen.values()) / len(seen)
        assert 0.2 <= share <= 0.4, share
        # an admin address calls a version directly, even at 0 % of the traffic
        assert c.get("/greet", headers={"X-Function-Version": "2"}).json()["v"] == 2
        assert c.get("/greet", headers={"X-Function-Version": "1"}).json()["v"] == 1
        assert c.get("/greet", headers={"X-Function-Version": "9"}).json()["error"]["code"] == "unknown_version"
        h.deployments.promote("greet", "test", "127.0.0.1")
        assert {c.get("/greet", headers={"X-API-Key": f"caller-{n}"}).json()["v"] for n in range(50)} == {2}
        assert (h.pointer("greet").active, h.pointer("greet").canary, h.pointer("greet").previous) == (2, None, 1)
    with h.client("10.9.8.7") as outsider:
        refused = outsider.get("/greet", headers={"X-Function-Version": "1"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "version_pin_forbidden"


def test_a_failing_canary_is_rolled_back_by_itself_audited_and_logged(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1)}, canary_window=10, canary_min_requests=5, canary_max_error_rate=0.2)
    failing = greet(2).replace('return json_response({"v": 2', 'raise RuntimeError("canary bug")\n    return '
                                                              'json_response({"v": 2')
    with h.client() as c:
        h.deploy("greet", failing, canary=50)
        statuses = {1: 0, 500: 0}
        for caller in range(40):
            answer = c.get("/greet", headers={"X-API-Key": f"c{caller}"})
            statuses[500 if answer.status_code == 500 else 1] += 1
        # the canary answered 500 until its window judged it (5 requests), then never again
        assert statuses[500] == 5, statuses
        deadline = time.monotonic() + 5
        while h.pointer("greet").canary is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        pointer = h.pointer("greet")
        assert (pointer.active, pointer.canary, pointer.changed_by) == (1, None, "system:canary")
        assert "automatic rollback" in pointer.reason
    [event] = audits("function.canary_rollback")
    details = json.loads(event.details)
    assert (details["canary"], details["errors"], details["error_rate"]) == (2, 5, 1.0)


def test_a_healthy_canary_is_not_rolled_back(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1)}, canary_min_requests=3)
    with h.client() as c:
        h.deploy("greet", greet(2), canary=50)
        assert {c.get("/greet", headers={"X-API-Key": f"c{n}"}).status_code for n in range(60)} == {200}
        assert h.pointer("greet").canary == 2
        assert h.registry.deployment("greet").canary.outcomes.count(False) > 3


def test_a_deploy_and_a_rollback_survive_a_restart_and_shipped_upgrades_follow_the_rules(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1), "other.py": OTHER})
    h.deploy("greet", greet(2))
    with h.start().client() as c:  # a new process on the same database
        assert c.get("/greet").json()["v"] == 2
    # a new release ships greet v3 and other v2: greet keeps the operator's deploy, other upgrades
    (h.dir / "greet.py").write_text(greet("'shipped-3'"))
    (h.dir / "other.py").write_text(OTHER.replace('"other": True', '"other": 2'))
    with h.start().client() as c:
        assert c.get("/greet").json()["v"] == 2
        assert c.get("/other").json() == {"other": 2}
        assert [(v.version, v.origin) for v in store.history("greet")] == [(1, "shipped"), (2, "deploy"),
                                                                          (3, "shipped")]
        h.deployments.rollback("greet", "test", "127.0.0.1", to=3)
        assert c.get("/greet").json()["v"] == "shipped-3"
    (h.dir / "greet.py").write_text(greet("'shipped-4'"))
    with h.start().client() as c:  # now a shipped version serves, so the next release replaces it
        assert c.get("/greet").json()["v"] == "shipped-4"
        h.deployments.rollback("greet", "test", "127.0.0.1")
    with h.start().client() as c:
        assert c.get("/greet").json()["v"] == "shipped-3"  # the rollback survived the restart


def test_after_a_shipped_upgrade_a_rollback_serves_the_code_version_one_really_was(tmp_path):
    h = Harness(tmp_path, {"greet.py": greet(1)})
    (h.dir / "greet.py").write_text(greet("'upgraded'"))
    with h.start().client() as c:
        assert c.get("/greet").json()["v"] == "upgraded"
        h.deployments.rollback("greet", "test", "127.0.0.1")
        assert c.get("/greet").json()["v"] == 1
        assert c.get("/greet", headers={"X-Function-Version": "2"}).json()["v"] == "upgraded"


def test_a_stored_version_that_no_longer_loads_leaves_the_shipped_one_serving(tmp_path):
    """A deployed version that imports something a later release dropped: the process still starts, serves
    the shipped version and says why."""
    h = Harness(tmp_path, {"greet.py": greet(1)})
    h.deploy("greet", greet(2))
    store.FunctionVersion.update(source="import gone_in_this_release\n" + greet(2)).where(
        (store.FunctionVersion.module == "greet") & (store.FunctionVersion.version == 2)).execute()
    with h.start().client() as c:
        assert c.get("/greet").json()["v"] == 1
        assert h.pointer("greet").active == 2  # the pointer is the operator's to move


def test_the_micro_cache_forgets_a_function_on_every_switch(tmp_path):
    immutable = '''
from runtime.functions import function
from runtime.http import json_response

@function(route="/fixed", methods=["GET"])
async def fixed(request, ctx):
    response = json_response({{"v": {v}}})
    response.immutable = True
    return response
'''
    h = Harness(tmp_path, {"fixed.py": immutable.format(v=1)})
    with h.client() as c:
        assert c.get("/fixed").json() == {"v": 1} and len(h.responses) == 1
        h.deploy("fixed", immutable.format(v=2))
        assert c.get("/fixed").json() == {"v": 2}
        h.deployments.rollback("fixed", "test", "127.0.0.1")
        assert c.get("/fixed").json() == {"v": 1}


def test_timeout_and_concurrency_hold_for_the_whole_streamed_response(tmp_path):
    h = Harness(tmp_path, {"stream.py": STREAM})
    with h.client() as c:
        assert c.get("/stream").text.count("part") == 6  # 0.3 s of body, within its 0.6 s
        # the body outlives timeout_s: cut off mid-stream (over HTTP the connection closes without the last
        # chunk: tests/integration/test_deploy_live.py)
        assert 1 <= c.get("/stream?pause=0.3").text.count("part") < 6
        # a second caller while a stream is being sent: the slot is still held
        import threading

        started = threading.Event()
        results = {}

        def slow():
            with c.stream("GET", "/stream?pause=0.08") as r:
                for i, _line in enumerate(r.iter_lines()):
                    if i == 0:
                        started.set()
                results["first"] = r.status_code

        thread = threading.Thread(target=slow)
        thread.start()
        assert started.wait(5)
        second = c.get("/stream")
        thread.join()
        assert second.status_code == 429 and second.json()["error"]["code"] == "too_many_requests"
        assert results["first"] == 200
        assert c.get("/stream").status_code == 200  # released once the stream ended
        # overridden per deploy without code: a longer timeout lets the slow body through
        h.deploy("stream", None, overrides={"timeout_s": 5})
        assert c.get("/stream?pause=0.2").text.count("part") == 6


def test_requests_in_flight_finish_on_the_version_they_started_on(tmp_path):
    slow = greet(1).replace("async def greet(request, ctx):", "async def greet(request, ctx):\n"
                                                              "    import asyncio\n    await asyncio.sleep(0.5)")
    h = Harness(tmp_path, {"greet.py": slow})
    import threading

    with h.client() as c:
        answers = []
        thread = threading.Thread(target=lambda: answers.append(c.get("/greet").json()["v"]))
        thread.start()
        time.sleep(0.2)
        h.deploy("greet", greet(2))
        assert c.get("/greet").json()["v"] == 2
        thread.join()
        assert answers == [1]
