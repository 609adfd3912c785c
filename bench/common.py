"""Shared pieces of the benchmarks: a real service process, nginx, wrk."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support import ServiceProcess, free_port, nginx_conf

NGINX_CONF = nginx_conf("""
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ audio/wav wav; audio/mpeg mp3; }}
    server {{
        listen 127.0.0.1:{port};
        location /audio/ {{
            alias {root}/;
            etag on;
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
""", connections=1024)


def need(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if not path:
        sys.exit(f"{binary} is not installed: run `make bench` (installs nginx and wrk via apt as root)")
    return path


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (state, ppid, …); [] if it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (0 once it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the service's engine worker processes)."""
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and (fields := _stat(proc.name)):
            children.setdefault(int(fields[1]), []).append(int(proc.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def rss_mb(pids: list[int]) -> float:
    """Resident memory of these processes together (``VmRSS``; shared library pages count once per process)."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def start_service(env: dict[str, str] | None = None) -> ServiceProcess:
    """The service in embedded mode, in its own process, JSON logs to a file (as in production)."""
    base = Path(tempfile.mkdtemp(prefix="ef-bench-"))
    base.chmod(0o755)  # nginx's workers (www-data) read the cache files in the serving benchmark
    data = base / "data"
    # nginx runs with access_log off; so does the service, for a like-for-like comparison
    return ServiceProcess(data, env={"ACCESS_LOG": "false", "LOG_JSON": "true", **(env or {})}).start().wait_ready(
        timeout=120)


class Nginx:
    def __init__(self, root: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ef-nginx-"))
        self.port = free_port()
        conf = self.dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.dir, port=self.port, root=root))
        self.proc = subprocess.Popen([need("nginx"), "-c", str(conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(0.5)

    def url(self, relpath: str) -> str:
        return f"http://127.0.0.1:{self.port}/audio/{relpath}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def wrk(url: str, connections: int = 32, seconds: int = 10, threads: int = 2) -> float:
    """Requests per second that wrk measured (fails on any non-2xx answer)."""
    out = subprocess.run([need("wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url} answered errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
