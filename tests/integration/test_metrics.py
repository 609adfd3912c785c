"""/metrics for real: who may read it, what it counts, a real Prometheus scraping it (up and a synthesis
counter read back through its HTTP API), the alert rules checked by promtool, and a Grafana dashboard whose
every metric the service really exports."""

from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pytest

from tests.support import ROOT, ServiceProcess, client_from, free_port, require_binary, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    proc = ServiceProcess(tmp_path_factory.mktemp("metrics") / "data", env={
        "ENGINES": "espeak", "ADMIN_ALLOWED_CIDRS": "127.0.0.1/32", "SCHEDULER_LEASE_S": "1"})
    proc.admin_key = run_cli(proc, "keys", "create", "prometheus", "--admin").stdout.strip()
    proc.plain_key = run_cli(proc, "keys", "create", "app").stdout.strip()
    proc.start().wait_ready()
    with httpx.Client(base_url=proc.url, timeout=60) as c:
        for n in range(3):
            assert c.post("/v1/audio/speech", json={"input": f"Counting sentence {n}.", "voice": "espeak:en-us",
                                                    "response_format": "wav"}).status_code == 200
        assert c.post("/v1/audio/speech", json={"input": "Counting sentence 0.", "voice": "espeak:en-us",
                                                "response_format": "wav"}).status_code == 200  # a hit
        asked = c.post("/api/admin/scheduler/prune/run", headers={"Authorization": f"Bearer {proc.admin_key}"})
        assert asked.status_code == 202
        time.sleep(1.5)
    try:
        yield proc
    finally:
        proc.stop()


def exported(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def value(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{series} not in the metrics")


def test_only_the_admin_network_or_an_admin_key_reads_the_metrics(svc):
    assert httpx.get(svc.url + "/metrics").status_code == 200  # 127.0.0.1: inside ADMIN_ALLOWED_CIDRS
    with client_from("127.0.0.5") as outsider:
        assert outsider.get(svc.url + "/metrics").status_code == 401
        plain = outsider.get(svc.url + "/metrics", headers={"Authorization": f"Bearer {svc.plain_key}"})
        assert plain.status_code == 403
        ok = outsider.get(svc.url + "/metrics", headers={"Authorization": f"Bearer {svc.admin_key}"})
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")


def test_the_metrics_count_what_happened(svc):
    text = httpx.get(svc.url + "/metrics").text
    assert value(text, 'ef_syntheses_total{engine="espeak",outcome="ok"}') == 3
    assert value(text, 'ef_cache_requests_total{result="hit"}') >= 1
    assert value(text, 'ef_http_requests_total{function="openai_speech",status="200",version="1"}') == 4
    assert value(text, 'ef_jobs{status="succeeded"}') >= 3
    assert value(text, "ef_cache_entries") >= 3 and value(text, "ef_cache_bytes") > 0
    assert value(text, "ef_database_bytes") > 0 and value(text, "ef_data_free_bytes") > 0
    assert value(text, 'ef_scheduler_last_success_timestamp_seconds{task="prune"}') > time.time() - 120
    assert value(text, 'ef_scheduler_interval_seconds{task="backup"}') == 86400
    assert value(text, 'ef_circuit_open{engine="espeak"}') == 0
    assert 'ef_synthesis_real_time_factor_bucket{engine="espeak"' in text


def test_a_real_prometheus_scrapes_it(svc, tmp_path):
    prometheus = require_binary("prometheus")
    port = free_port()
    target = svc.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{ROOT / 'docker' / 'prometheus' / 'alerts.yml'}"]
scrape_configs:
  - job_name: ef-speech
    static_configs: [{{targets: ["{target}"]}}]
""")
    log = tmp_path / "prometheus.log"
    proc = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        def query(expr: str) -> list:
            try:
                answer = httpx.get(api, params={"query": expr}, timeout=5).json()
            except (httpx.HTTPError, ValueError):  # not up yet, or still starting ("Service Unavailable")
                return []
            return answer.get("data", {}).get("result", [])

        deadline = time.monotonic() + 60
        while not (up := query('up{job="ef-speech"}')) or up[0]["value"][1] != "1":
            assert time.monotonic() < deadline and proc.poll() is None, (up, log.read_text()[-3000:])
            time.sleep(0.5)
        count = query('ef_syntheses_total{engine="espeak",outcome="ok"}')
        assert count and float(count[0]["value"][1]) == 3
        rules = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=5).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"EfSpeechDown", "EfSchedulerJobLate"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_alert_rules_pass_promtool():
    promtool = require_binary("promtool")
    done = subprocess.run([promtool, "check", "rules", str(ROOT / "docker" / "prometheus" / "alerts.yml")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_every_metric_the_dashboard_and_the_rules_use_is_exported(svc):
    text = httpx.get(svc.url + "/metrics").text
    names = exported(text)
    dashboard = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "ef-speech.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs.append((ROOT / "docker" / "prometheus" / "alerts.yml").read_text())
    used = {name for expr in exprs for name in re.findall(r"\bef_[a-z0-9_]+", expr)}
    assert used and used <= names, used - names
