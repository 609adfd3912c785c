"""DATABASE_URL=postgres://… for real: migrations, jobs, single-flight (the partial unique index) on PostgreSQL."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from storage.migrations import available
from tests.support import ServiceProcess, assert_speech, decode_wav

pytestmark = pytest.mark.integration


def test_service_on_postgres(postgres_server, tmp_path):
    env = {"DATABASE_URL": postgres_server.url}
    proc = ServiceProcess(tmp_path / "data", env=env).start()
    try:
        proc.wait_ready()
        assert not (tmp_path / "data" / "db.sqlite").exists()
        text = "Stored in PostgreSQL this time."
        with httpx.Client(base_url=proc.url, timeout=120) as c:
            def post(_):
                return c.post("/v1/audio/speech", json={"input": text, "voice": "alloy", "response_format": "wav"})

            with ThreadPoolExecutor(8) as pool:
                responses = list(pool.map(post, range(8)))
            assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
            assert_speech(decode_wav(responses[0].content), text, sample_rate=22050)
            job = c.post("/api/synthesize?wait=30", json={"text": "A job row in Postgres."}).json()
            assert job["status"] == "succeeded"
            assert c.get(job["status_url"]).json()["engine"] == "piper"
            assert c.get("/health").json()["checks"]["db"]["ok"] is True
    finally:
        proc.stop()

    with postgres_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_version ORDER BY version")
        assert cur.fetchall() == [(version,) for version, _ in available()]
        cur.execute("SELECT COUNT(*) FROM jobs WHERE text = %s AND NOT from_cache", (text,))
        assert cur.fetchone()[0] == 1  # eight concurrent identical requests, one synthesis
        cur.execute("SELECT COUNT(*) FROM cache_entries")
        assert cur.fetchone()[0] == 2

    # Restart: migrations are not applied twice; the data is still there.
    again = ServiceProcess(tmp_path / "data", env=env).start()
    try:
        again.wait_ready()
        assert "applied migration" not in again.log()
        r = httpx.post(again.url + "/v1/audio/speech", json={"input": text, "response_format": "wav"}, timeout=60)
        assert r.headers["x-cache"] == "hit"
    finally:
        again.stop()


def test_backup_of_postgres_with_pg_dump(postgres_server, tmp_path, monkeypatch):
    """The backup job on Postgres: pg_dump's custom format, which pg_restore reads back; without pg_dump the
    job fails saying so, and makes nothing."""
    from storage.backup import BackupError, backup, list_backups
    from storage.db import open_database
    from storage.migrations import migrate

    db = open_database(postgres_server.url)
    migrate(db)
    db.close()
    monkeypatch.setenv("PATH", f"{postgres_server.bin}:/usr/bin:/bin")  # the server's own client tools
    done = backup(postgres_server.url, tmp_path / "backups", keep=2)
    assert done["file"].endswith(".pgdump") and done["bytes"] > 0
    listing = subprocess.run(["pg_restore", "--list", str(tmp_path / "backups" / done["file"])],
                             capture_output=True, text=True)
    assert listing.returncode == 0 and "TABLE public jobs" in listing.stdout, listing.stderr
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BackupError, match="pg_dump is not installed"):
        backup(postgres_server.url, tmp_path / "backups", keep=2)
    assert len(list_backups(tmp_path / "backups")) == 1


def test_function_deploys_on_postgres_from_several_processes_at_once(postgres_server, tmp_path):
    """Four CLI processes deploy at the same moment (each also records the shipped files first): the table
    lock gives every deploy its own version number, and the pointer ends on one of them; rollback works."""
    from runtime.app import FUNCTIONS_DIR
    from tests.support import run_cli

    holder = ServiceProcess(tmp_path / "data", env={"DATABASE_URL": postgres_server.url})
    original = (FUNCTIONS_DIR / "voices.py").read_text()
    files = []
    for n in range(4):
        path = tmp_path / f"voices_{n}.py"
        path.write_text(original.replace('{"default": ', f'{{"revision": {n}, "default": '))
        files.append(path)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda f: run_cli(holder, "deploy", "voices", "--from", str(f)), files))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    with postgres_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT version, origin FROM function_versions WHERE module = 'voices' ORDER BY version")
        assert cur.fetchall() == [(1, "shipped"), (2, "deploy"), (3, "deploy"), (4, "deploy"), (5, "deploy")]
        cur.execute("SELECT COUNT(*) FROM function_pointers")
        modules = cur.fetchone()[0]
        cur.execute("SELECT active, generation FROM function_pointers WHERE module = 'voices'")
        active, generation = cur.fetchone()
    assert modules >= 30 and active in (2, 3, 4, 5) and generation == 5
    back = run_cli(holder, "rollback", "voices", "--to", "1")
    assert back.returncode == 0 and "serving v1" in back.stdout, back.stderr
