import os
from pathlib import Path

import pytest

from runtime.settings import ENVIRONMENT_VARIABLES, OPENAI_VOICE_NAMES, Settings, SettingsError
from tests.support import ROOT


def test_defaults_are_the_embedded_mode():
    s = Settings.from_env({})
    assert s.embedded and s.redis_url == ""
    assert s.database_url == "sqlite:///data/db.sqlite"
    assert s.cache_dir == Path("data/audio-cache")
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.max_text_chars == 4096
    assert s.engines == ("piper", "espeak")
    assert set(s.voice_aliases) == set(OPENAI_VOICE_NAMES)


def test_environment_values_are_typed():
    s = Settings.from_env({"DATA_DIR": "/srv/tts", "PORT": "9000", "REDIS_URL": "redis://x:6379/0",
                           "ENGINES": "espeak", "LOG_JSON": "no", "VOICE_ALIASES": "alloy=espeak:en-us"})
    assert s.database_url == "sqlite:////srv/tts/db.sqlite"
    assert s.cache_dir == Path("/srv/tts/audio-cache")
    assert s.port == 9000 and not s.embedded and s.engines == ("espeak",) and s.log_json is False
    assert s.voice_aliases == {"alloy": "espeak:en-us"}


@pytest.mark.parametrize(("env", "names"), [
    ({"PORT": "eighty"}, "PORT"),
    ({"PORT": "70000"}, "PORT"),
    ({"WORKER_THREADS": "0"}, "WORKER_THREADS"),
    ({"LOG_JSON": "maybe"}, "LOG_JSON"),
    ({"ENGINES": "piper,festival"}, "ENGINES"),
    ({"VOICE_ALIASES": "alloy"}, "VOICE_ALIASES"),
    ({"JOB_TIMEOUT_S": "-3"}, "JOB_TIMEOUT_S"),
    ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"ENGINE_ISOLATION": "container"}, "ENGINE_ISOLATION"),
    ({"ENGINE_PROCESSES": "piper=0"}, "ENGINE_PROCESSES"),
    ({"ENGINE_PROCESSES": "external=2"}, "ENGINE_PROCESSES"),
    ({"ENGINE_PROCESSES": "piper"}, "ENGINE_PROCESSES"),
])
def test_bad_values_fail_fast_naming_the_variable(env, names):
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_cli_reports_configuration_errors(monkeypatch, capsys):
    from runtime.cli import main

    monkeypatch.setenv("PORT", "not-a-port")
    assert main(["serve"]) == 2
    assert "PORT must be an integer" in capsys.readouterr().err


def test_test_services_never_inherit_service_settings(monkeypatch, tmp_path):
    """A developer's DATABASE_URL / REDIS_URL must not point the test services at a real database."""
    from runtime.settings import ENVIRONMENT_VARIABLES
    from tests.support import ServiceProcess

    assert {"DATABASE_URL", "REDIS_URL", "DATA_DIR", "ENGINES"} <= set(ENVIRONMENT_VARIABLES)
    monkeypatch.setenv("DATABASE_URL", "postgres://prod.example/db")
    monkeypatch.setenv("REDIS_URL", "redis://prod.example:6379/0")
    monkeypatch.setenv("ENGINES", "espeak")
    proc = ServiceProcess(tmp_path / "data", env={"ENGINES": "piper"})
    assert "DATABASE_URL" not in proc.env and "REDIS_URL" not in proc.env
    assert proc.env["ENGINES"] == "piper" and proc.env["DATA_DIR"] == str(tmp_path / "data")


def test_thread_layout_and_isolation_defaults(monkeypatch):
    """One synthesis at a time per core (2 to 8), engines in worker processes, one process per worker thread."""
    import runtime.settings as settings_module

    for cores, threads, idle in ((1, 2, 0), (2, 2, 2), (4, 4, 4), (32, 8, 4)):
        monkeypatch.setattr(settings_module, "usable_cores", lambda cores=cores: cores)
        s = Settings.from_env({})
        assert (s.worker_threads, s.piper_idle_threads) == (threads, idle)
    s = Settings.from_env({"WORKER_THREADS": "3", "ENGINE_PROCESSES": "coqui=1"})
    assert s.engine_isolation == "process" and s.piper_threads == 1
    assert (s.processes_for("piper"), s.processes_for("espeak"), s.processes_for("coqui")) == (3, 3, 1)


def test_the_idle_lane_is_built_with_its_own_threads_and_only_when_it_has_more():
    from runtime.speech.engines import _idle_lane

    name, settings = _idle_lane("piper", Settings.from_env({"PIPER_IDLE_THREADS": "3"}))
    assert name == "piper" and settings.piper_threads == 3
    assert _idle_lane("piper", Settings.from_env({"PIPER_IDLE_THREADS": "0"})) is None
    assert _idle_lane("piper", Settings.from_env({"PIPER_IDLE_THREADS": "2", "PIPER_THREADS": "2"})) is None
    assert _idle_lane("espeak", Settings.from_env({"PIPER_IDLE_THREADS": "3"})) is None
    with pytest.raises(SettingsError, match="PIPER_IDLE_THREADS"):
        Settings.from_env({"PIPER_IDLE_THREADS": "many"})


def test_usable_cores_follow_the_affinity_mask():
    """A service started under ``taskset`` (or in a cpuset) sizes itself to the cores it may use: real
    affinity, in a child process."""
    import subprocess
    import sys

    code = ("from runtime.settings import Settings, usable_cores; s = Settings.from_env({}); "
            "print(usable_cores(), s.worker_threads, s.piper_idle_threads)")
    pinned = subprocess.run(["taskset", "-c", "0", sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert pinned.stdout.split() == ["1", "2", "0"]  # two worker threads still; no idle lane on one core
    if len(os.sched_getaffinity(0)) > 1:
        both = subprocess.run(["taskset", "-c", "0,1", sys.executable, "-c", code], capture_output=True,
                              text=True, check=True, cwd=ROOT)
        assert both.stdout.split()[0] == "2"


def test_a_cgroup_cpu_quota_narrows_the_cores(tmp_path):
    """Docker's --cpus and Compose's cpus: are a CFS quota on the container's cgroup: v2 (cpu.max) and v1
    (cpu.cfs_quota_us / cpu.cfs_period_us), on the process's cgroup or a parent; the tightest counts."""
    from runtime.settings import cgroup_cpu_quota

    v2 = tmp_path / "v2"
    (v2 / "system.slice" / "ef.service").mkdir(parents=True)
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "system.slice" / "cpu.max").write_text("250000 100000\n")
    (v2 / "system.slice" / "ef.service" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2, "0::/system.slice/ef.service\n") == 1.5
    assert cgroup_cpu_quota(v2, "0::/system.slice\n") == 2.5
    assert cgroup_cpu_quota(v2, "0::/elsewhere/not/visible\n") is None  # the root's "max": no quota
    (v2 / "cpu.max").write_text("50000 100000\n")  # a container: its root is its own cgroup
    assert cgroup_cpu_quota(v2, "0::/docker/0123abcd\n") == 0.5

    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us").write_text("100000\n")
    (v1 / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    membership = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"
    assert cgroup_cpu_quota(v1, membership) == 1.0
    assert cgroup_cpu_quota(v1, "3:cpu,cpuacct:/\n") is None  # -1: no quota
    assert cgroup_cpu_quota(tmp_path / "nothing", membership) is None


def test_environment_then_env_file_then_secrets_files(tmp_path):
    from runtime.settings import environment, loose_env_file

    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9100\nAUTH_MODE=api_key\nREDIS_URL=redis://:from-dotenv@127.0.0.1:6379/0\n")
    env_file.chmod(0o600)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "database_url").write_text("postgres://ef:s3cret-pw@db:5432/ef\n")
    (secrets_dir / "REDIS_URL").write_text("redis://:from-secret@127.0.0.1:6379/0")
    merged = environment({"ENV_FILE": str(env_file), "SECRETS_DIR": str(secrets_dir), "PORT": "9200"})
    s = Settings.from_env(merged)
    assert s.port == 9200  # the process environment wins
    assert s.auth_mode == "api_key"  # then .env
    assert s.redis_url == "redis://:from-dotenv@127.0.0.1:6379/0"  # .env before the secrets directory
    assert s.database_url == "postgres://ef:s3cret-pw@db:5432/ef"  # a Docker secret, lower-case file name
    assert loose_env_file({"ENV_FILE": str(env_file)}) is None
    env_file.chmod(0o644)
    assert "chmod 600" in loose_env_file({"ENV_FILE": str(env_file)})


def test_settings_dumps_never_show_passwords():
    s = Settings.from_env({"DATABASE_URL": "postgres://ef:s3cret-pw@db:5432/ef",
                           "REDIS_URL": "redis://:r3dis-pw@127.0.0.1:6379/0"})
    assert "s3cret-pw" not in repr(s) and "r3dis-pw" not in repr(s)
    dump = s.redacted()
    assert dump["DATABASE_URL"] == "postgres://ef:***@db:5432/ef" and dump["REDIS_URL"].startswith("redis://:***@")
    assert set(dump) == set(ENVIRONMENT_VARIABLES)


@pytest.mark.parametrize(("env", "var"), [
    ({"AUTH_MODE": "keys"}, "AUTH_MODE"),
    ({"CORS_ORIGINS": "*"}, "CORS_ORIGINS"),
    ({"CORS_ORIGINS": "https://ha.lan/path"}, "CORS_ORIGINS"),
    ({"RATE_LIMITS": "openai_speech=lots"}, "RATE_LIMITS"),
    ({"ARGON2_MEMORY_KIB": "1024"}, "ARGON2_MEMORY_KIB"),  # never below the design's 64 MiB
    ({"SESSION_IDLE_S": "7200", "SESSION_MAX_S": "3600"}, "SESSION_MAX_S"),
])
def test_security_settings_are_validated(env, var):
    with pytest.raises(SettingsError, match=var):
        Settings.from_env(env)


def test_env_sample_lists_every_variable_at_its_default():
    from dotenv import dotenv_values

    from runtime.settings import env_sample
    assert (ROOT / ".env.sample").read_text() == env_sample()  # regenerate it as env_sample() says
    sample = dotenv_values(ROOT / ".env.sample")
    assert set(sample) == set(ENVIRONMENT_VARIABLES)
    assert Settings.from_env({k: v or "" for k, v in sample.items()}) == Settings()


@pytest.mark.parametrize(("url", "says"), [
    ("sqlite://data/db.sqlite", "sqlite:///data/db.sqlite"),  # two slashes: would be host 'data'
    ("mysql://u:p@h/db", "must be sqlite"),
    ("data/db.sqlite", "must be sqlite"),
    ("postgres://ef:secret@db:5432", "names no database"),
])
def test_database_urls_peewee_would_misread_are_refused(url, says):
    with pytest.raises(SettingsError, match="DATABASE_URL") as refused:
        Settings.from_env({"DATABASE_URL": url})
    assert says in str(refused.value) and "secret" not in str(refused.value)
    Settings.from_env({"DATABASE_URL": "sqlite:////srv/ef/db.sqlite"})
    Settings.from_env({"DATABASE_URL": "postgres://ef:secret@db:5432/ef"})


@pytest.mark.parametrize(("env", "var"), [({"LOG_FILE": "x.log", "LOG_ROTATION": "sometimes"}, "LOG_ROTATION"),
                                          ({"LOG_FILE": "x.log", "LOG_RETENTION": "forever-ish"}, "LOG_RETENTION")])
def test_log_file_rotation_and_retention_are_validated(env, var):
    with pytest.raises(SettingsError, match=var):
        Settings.from_env(env)


def test_the_zeroconf_name_is_checked():
    from runtime.wyoming.discovery import announced_address, instance_name

    assert Settings.from_env({}).wyoming_zeroconf == "off"
    assert Settings.from_env({"WYOMING_ZEROCONF": "Kitchen speaker"}).wyoming_zeroconf == "Kitchen speaker"
    for bad in ("kitchen.local", "x" * 64):
        with pytest.raises(SettingsError, match="WYOMING_ZEROCONF"):
            Settings.from_env({"WYOMING_ZEROCONF": bad})
    assert instance_name("on").startswith("ef-speech-") and instance_name("Den") == "Den"
    assert announced_address("127.0.0.1") == "127.0.0.1"
    with pytest.raises(RuntimeError, match="IPv4"):
        announced_address("::1")
