"""Deployment files are valid: the compose file per docker-compose itself, the Procfile's commands."""

from __future__ import annotations

import subprocess

from tests.support import ROOT, require_binary


def compose(*args: str) -> str:
    binary = require_binary("docker-compose")
    proc = subprocess.run([binary, "-f", str(ROOT / "docker-compose.yml"), *args], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_compose_file_is_valid():
    compose("config", "-q")
    assert set(compose("config", "--services").split()) == {"redis", "web", "worker", "scheduler"}
    assert "redis-data" in compose("config", "--volumes").split()
    rendered = compose("config")
    assert "REDIS_URL: redis://redis:6379/0" in rendered
    assert rendered.count("/app/data") >= 6  # the app services mount ./data and set DATA_DIR


def test_procfile_runs_the_cli_roles():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert lines["web"].strip().startswith("python -m runtime serve")
    assert lines["worker"].strip() == "python -m runtime worker"
    assert lines["scheduler"].strip() == "python -m scheduler"


def test_dockerfile_runs_as_non_root_on_python_311_slim():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert "USER app" in text
    for package in ("functions", "runtime", "storage", "scheduler"):
        assert f"COPY {package} ./{package}" in text
