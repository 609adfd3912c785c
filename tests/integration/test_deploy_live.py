"""Deploys under load on real service processes: a load generator keeps calling a function while it is
deployed and rolled back, from the CLI (another process: the service follows within FUNCTION_SYNC_S) and
from the admin API; no request fails, and the answers switch within the sync interval. Then the same with
two web processes on one database and Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from runtime.app import FUNCTIONS_DIR
from tests.support import Load, ServiceProcess, run_cli

pytestmark = pytest.mark.integration
SYNC_S = 1.0
SLACK_S = 0.3  # loading the new module and one request's time, beyond the sync interval


def voices_v2() -> str:
    source = (FUNCTIONS_DIR / "voices.py").read_text()
    assert '{"default": ' in source
    return source.replace('{"default": ', '{"revision": 2, "default": ')


def admin_key(service: ServiceProcess) -> str:
    made = run_cli(service, "keys", "create", "deployer", "--admin")
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[0].strip()  # the key, shown once, on the first line


def deploy_and_roll_back(tmp_path: Path, services: list[ServiceProcess]) -> dict:
    """Deploy voices v2 from the CLI, roll it back through the admin API of the first service, then deploy it
    as a canary and promote it, all under load; returns the switch times."""
    first = services[0]
    key = admin_key(first)
    source = tmp_path / "voices_v2.py"
    source.write_text(voices_v2())
    figures = {}
    with Load([s.url for s in services]) as load:
        time.sleep(1.0)
        done = run_cli(first, "deploy", "voices", "--from", str(source), "--note", "under load")
        assert done.returncode == 0, done.stderr
        deployed = time.monotonic()
        time.sleep(SYNC_S + 1.5)
        figures["deploy_cli_s"] = load.switch_seconds(deployed, 2)

        with httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
            began = time.monotonic()
            back = admin.post("/api/admin/functions/voices/rollback")
            assert back.status_code == 200, back.text
            rolled = time.monotonic()
            time.sleep(SYNC_S + 1.5)
            figures["rollback_api_s"] = load.switch_seconds(rolled, 1)
            figures["rollback_call_s"] = rolled - began

            broken = admin.post("/api/admin/functions/voices/versions", json={"source": "def broken(:\n"})
            assert broken.status_code == 422 and broken.json()["error"]["code"] == "load_failed", broken.text
            listing = admin.get("/api/admin/functions").json()["functions"]
            assert {"module": "voices", "active": 1, "canary": None}.items() <= \
                next(m for m in listing if m["module"] == "voices").items()
            stored = admin.get("/api/admin/functions/openai_speech")  # by a function's name
            assert stored.json()["module"] == "speech" and stored.json()["versions"][0]["origin"] == "shipped"
            assert admin.get("/api/admin/functions/voices/versions/2").json()["source"] == voices_v2()
            canary = admin.post("/api/admin/functions/voices/versions", json={"source": voices_v2(), "canary": 50})
            assert canary.status_code == 200 and canary.json()["traffic"] == {"1": 50, "2": 50}, canary.text
            time.sleep(SYNC_S + 1.0)
            promoted = admin.post("/api/admin/functions/voices/promote")
            assert promoted.status_code == 200 and promoted.json()["active"] == 2, promoted.text
            promoted_at = time.monotonic()
            time.sleep(SYNC_S + 1.0)
            figures["promote_api_s"] = load.switch_seconds(promoted_at, 2)
    assert load.failed() == [], f"{len(load.failed())} failed requests, e.g. {load.failed()[:3]}"
    figures["requests"] = len(load.answers)
    return figures


def test_deploy_and_rollback_under_load_fail_no_request(tmp_path):
    env = {"FUNCTION_SYNC_S": str(SYNC_S), "LOG_JSON": "true"}
    service = ServiceProcess(tmp_path / "data", env=env).start()
    try:
        service.wait_ready(timeout=90)
        figures = deploy_and_roll_back(tmp_path, [service])
        print("switch times", figures)
        assert figures["requests"] > 100
        assert figures["deploy_cli_s"] <= SYNC_S + SLACK_S, figures  # another process deployed: one sync
        assert figures["rollback_api_s"] <= SLACK_S, figures  # this process rolled back: at once
        assert figures["promote_api_s"] <= SLACK_S, figures

        # metrics by function and version; log lines carry function@version
        metrics = httpx.get(service.url + "/metrics").text
        assert 'ef_http_requests_total{function="voices",status="200",version="2"}' in metrics
        assert 'ef_function_cold_starts_total{function="voices",version="2"} 1.0' in metrics
        lines = [json.loads(line) for line in service.log().splitlines() if line.startswith("{")]
        assert any(line.get("function") == "voices@2" and "/api/voices 200" in line["message"] for line in lines)
        assert any(line.get("function") == "voices@1" and "/api/voices 200" in line["message"] for line in lines)

        # the audit trail: CLI deploy, API rollback, API canary deploy and promote
        listing = run_cli(service, "functions", "voices", "--json")
        history = json.loads(listing.stdout)
        assert [v["origin"] for v in history["versions"]] == ["shipped", "deploy"]
        assert history["active"] == 2 and history["previous"] == 1
        with service.db() as db:
            actions = [(r["action"], r["outcome"]) for r in db.execute(
                "SELECT action, outcome FROM audit_log WHERE action LIKE 'function.%' ORDER BY id")]
        assert actions == [("function.deploy", "success"), ("function.rollback", "success"),
                           ("function.deploy", "failure"), ("function.deploy", "success"),
                           ("function.promote", "success")]

        # a job records the function and version that asked for it
        speech = httpx.post(service.url + "/v1/audio/speech", json={"input": "Which version asked?"}, timeout=60)
        assert speech.status_code == 200
        key = admin_key(service)
        jobs = httpx.get(service.url + "/api/admin/jobs", headers={"Authorization": f"Bearer {key}"}).json()["jobs"]
        assert [j["function"] for j in jobs if j["id"] == speech.headers["x-job-id"]] == ["openai_speech@1"]

        # a restart serves the deployed version (loaded from the database)
        service.stop()
        service = ServiceProcess(tmp_path / "data", env=env, port=service.port).start().wait_ready(timeout=90)
        assert httpx.get(service.url + "/api/voices").json()["revision"] == 2
    finally:
        service.stop()


def test_two_web_processes_on_one_database_and_redis_follow_every_deploy(tmp_path, redis_server):
    env = {"FUNCTION_SYNC_S": str(SYNC_S), "REDIS_URL": redis_server.url}
    data = tmp_path / "data"
    webs = [ServiceProcess(data, env=env) for _ in range(2)]
    try:
        for web in webs:
            web.start()
        for web in webs:
            web.wait_ready(timeout=90, path="/healthz")
        figures = deploy_and_roll_back(tmp_path, webs)
        print("switch times, two processes", figures)
        # the admin API answered from the first process; the second follows within one sync
        assert figures["deploy_cli_s"] <= SYNC_S + SLACK_S, figures
        assert figures["rollback_api_s"] <= SYNC_S + SLACK_S, figures
        assert figures["promote_api_s"] <= SYNC_S + SLACK_S, figures
    finally:
        for web in webs:
            web.stop()
