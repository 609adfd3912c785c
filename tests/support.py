"""Test support: real service processes, real redis-server, audio decoding and checks."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import wave
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

from runtime.settings import ENVIRONMENT_VARIABLES

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binary(name: str) -> str:
    """Path of a server binary. Missing: the test fails under CI (the test command installs it) and is
    skipped elsewhere with the install command."""
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path:
        return path
    message = f"{name} is not installed (make test installs it: apt-get install {name})"
    # Under CI a missing server binary is a failure (the test command installs it), never a skip.
    (pytest.fail if os.environ.get("CI") else pytest.skip)(message)


class ServiceProcess:
    """``python -m runtime <command>`` as a real child process with its own environment."""

    def __init__(self, data_dir: Path, command: str = "serve", env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.command = command
        self.port = port or free_port()
        # The service's own settings never leak in from the environment running the tests (a developer's
        # DATABASE_URL or REDIS_URL must not point a test at a real database): only what the test sets.
        # Nor from a .env file or /run/secrets on the machine: those are the test's own, under its data dir.
        inherited = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT_VARIABLES}
        self.wyoming_port = free_port()
        self.env = {**inherited, "DATA_DIR": str(self.data_dir), "PORT": str(self.port), "HOST": "127.0.0.1",
                    "WYOMING_URI": f"tcp://127.0.0.1:{self.wyoming_port}",
                    "LOG_JSON": "false", "PYTHONUNBUFFERED": "1", "ENV_FILE": str(self.data_dir / ".env"),
                    "SECRETS_DIR": str(self.data_dir / "secrets"), **(env or {})}
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-{command}-{self.port}-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        host = self.env["HOST"]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> ServiceProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "runtime", self.command], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0, path: str = "/readyz") -> ServiceProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"service not ready after {timeout}s:\n{self.log()[-4000:]}")

    def wait_log(self, needle: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.log():
                return
            if self.proc and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not logged within {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.data_dir / "db.sqlite", timeout=10)
        conn.row_factory = sqlite3.Row
        return conn


@contextmanager
def running_service(data_dir: Path, env: dict[str, str] | None = None, ready_timeout: float = 60.0):
    """A started service process, ready (``/readyz``), stopped afterwards."""
    proc = ServiceProcess(data_dir, env=env).start()
    try:
        yield proc.wait_ready(timeout=ready_timeout)
    finally:
        proc.stop()


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.binary = require_binary("redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (fsync off), run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
        if initdb is None:
            require_binary("initdb")  # fails under CI, skips elsewhere
        self.bin = Path(initdb).resolve().parent
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="ef-pg-"))
        self.base.chmod(0o755)
        self.proc: subprocess.Popen | None = None

    def _as_postgres(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    @property
    def url(self) -> str:
        return f"postgres://ef@127.0.0.1:{self.port}/ef"

    def start(self) -> PostgresServer:
        data = self.base / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            shutil.chown(data, "postgres")
        init = subprocess.run(self._as_postgres([str(self.bin / "initdb"), "-D", str(data), "-U", "ef",
                                                 "--auth=trust", "-E", "UTF8"]), capture_output=True, text=True)
        if init.returncode != 0:
            raise AssertionError(f"initdb failed ({init.returncode}): {init.stdout[-2000:]}{init.stderr[-2000:]}")
        self.proc = subprocess.Popen(self._as_postgres([
            str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port), "-k", str(self.base),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        import psycopg2

        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="ef", dbname="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        conn.autocommit = True
        conn.cursor().execute("CREATE DATABASE ef")
        conn.close()
        return self

    def connect(self):
        import psycopg2

        return psycopg2.connect(host="127.0.0.1", port=self.port, user="ef", dbname="ef")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        shutil.rmtree(self.base, ignore_errors=True)


def poll_job(client: httpx.Client, status_url: str, timeout: float = 90.0) -> dict:
    """GET the job until it has finished (succeeded or failed); fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(status_url).json()
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"{status_url} did not finish within {timeout}s: {job}")


# --- audio -------------------------------------------------------------------------------------------

@dataclass
class DecodedAudio:
    sample_rate: int
    channels: int
    samples: np.ndarray  # int16, mono

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.mean(self.samples.astype(np.float64) ** 2))) if len(self.samples) else 0.0


def decode_wav(data: bytes) -> DecodedAudio:
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", "not a RIFF/WAVE file"
    with wave.open(io.BytesIO(data)) as w:
        assert w.getsampwidth() == 2, "expected 16-bit samples"
        frames = w.readframes(w.getnframes())
        return DecodedAudio(w.getframerate(), w.getnchannels(), np.frombuffer(frames, dtype="<i2"))


def decode_with_ffmpeg(data: bytes) -> DecodedAudio:
    """Decode any container ffmpeg knows to mono 16-bit PCM at its own rate (probed from ffmpeg's log)."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    proc = subprocess.run([ffmpeg, "-hide_banner", "-i", "pipe:0", "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"],
                          input=data, capture_output=True, check=True)
    info = proc.stderr.decode(errors="replace")
    stream = next(line for line in info.splitlines() if "Audio:" in line and "Stream" in line)
    rate = int(next(part for part in stream.split(",") if "Hz" in part).strip().split()[0])
    channels = 2 if "stereo" in stream else 1
    return DecodedAudio(rate, channels, np.frombuffer(proc.stdout, dtype="<i2"))


def assert_speech(audio: DecodedAudio, text: str, *, sample_rate: int | None = None) -> None:
    """Speech-like: right rate, mono, a plausible duration for the text, not silence."""
    if sample_rate is not None:
        assert audio.sample_rate == sample_rate, f"sample rate {audio.sample_rate} != {sample_rate}"
    assert audio.channels == 1
    words = max(1, len(text.split()))
    # Normal speech is ~2-4 words/s; allow wide margins for engines and pauses.
    assert 0.12 * words <= audio.seconds <= 1.5 * words + 1.0, f"{audio.seconds:.2f}s for {words} words"
    assert audio.rms > 300, f"audio is (nearly) silent: rms {audio.rms:.1f}"
    assert int(np.abs(audio.samples.astype(np.int32)).max()) > 3000, "audio has no loud part"


def run_cli(service: ServiceProcess, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python -m runtime <args>`` with a service's environment (its database), as an operator would."""
    return subprocess.run([sys.executable, "-m", "runtime", *args], cwd=ROOT, env=service.env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def client_from(address: str, **kwargs) -> httpx.Client:
    """An HTTP client whose connections leave from ``address`` (a loopback alias such as 127.0.0.2)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30, **kwargs)


def nginx_conf(http_block: str, connections: int = 64) -> str:
    """An nginx configuration that runs unprivileged in a work directory ({dir}) around ``http_block``."""
    return ("daemon off;\nworker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log warn;\n"
            f"events {{{{ worker_connections {connections}; }}}}\n"
            "http {{\n    access_log off;\n    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n"
            "    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n    scgi_temp_path {dir}/scgi;\n"
            + http_block + "}}\n")


NGINX_PROXY_CONF = nginx_conf("""
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {source};
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
""")


class NginxProxy:
    """A real nginx reverse proxy on 127.0.0.1 in front of a service, connecting to it from ``source``
    (a loopback alias), forwarding the client's address as nginx does: ``$proxy_add_x_forwarded_for``."""

    def __init__(self, workdir: Path, upstream_port: int, source: str) -> None:
        self.binary = require_binary("nginx")
        self.workdir = workdir
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "nginx.conf").write_text(NGINX_PROXY_CONF.format(dir=workdir, port=self.port,
                                                                    upstream=upstream_port, source=source))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NginxProxy:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not start: {(self.workdir / 'nginx-error.log').read_text()}")

    def __exit__(self, *exc) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass
class Load:
    """Threads calling ``path`` on each of ``urls`` until stopped: (started, finished, status, revision)."""

    urls: list[str]
    path: str = "/api/voices"
    threads: int = 3
    answers: list[tuple[float, float, int, int | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._workers = [threading.Thread(target=self._run, args=(self.urls[i % len(self.urls)],))
                         for i in range(self.threads * len(self.urls))]

    def _run(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    r = c.get(self.path)
                    revision = r.json().get("revision", 1) if r.status_code == 200 else None
                    self.answers.append((began, time.monotonic(), r.status_code, revision))
                except httpx.HTTPError:
                    self.answers.append((began, time.monotonic(), 0, None))

    def __enter__(self) -> Load:
        for t in self._workers:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(30)

    def failed(self) -> list:
        return [a for a in self.answers if a[2] != 200]

    def switch_seconds(self, since: float, revision: int) -> float:
        """How long after ``since`` the last request that still got another revision started (0: none did)."""
        stale = [a[0] for a in self.answers if a[0] >= since and a[3] != revision]
        return max(stale) - since if stale else 0.0
