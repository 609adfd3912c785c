"""The scheduler: one leader among real processes (a lease in the database, taken over after kill -9),
every run recorded, "run now" from the admin function, and the prune and backup jobs."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest

from runtime.settings import Settings
from scheduler.runner import JobContext
from storage.backup import integrity_ok, list_backups
from storage.db import open_database
from storage.migrations import migrate
from storage.models import AdminSession, Job, LoginFailure, WorkerHeartbeat, utcnow
from tests.support import ROOT, ServiceProcess, run_cli


def runs(db_path) -> list[sqlite3.Row]:
    if not db_path.exists():
        return []
    with sqlite3.connect(db_path, timeout=10) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute("SELECT * FROM scheduler_runs ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # the schedulers are still creating the schema
            return []


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_schedulers_one_leader_and_a_takeover_after_kill_9(tmp_path):
    data = tmp_path / "data"
    env = {"SCHEDULER_LEASE_S": "1.5", "PRUNE_INTERVAL_S": "1", "BACKUP_CRON": "0 3 1 1 *"}
    first = ServiceProcess(data, env=env)
    second = ServiceProcess(data, env=env)
    procs = []
    try:
        data.mkdir(parents=True)
        for proc in (first, second):
            with open(proc.log_path, "ab") as log:
                proc.proc = subprocess.Popen([sys.executable, "-m", "scheduler"], cwd=ROOT, env=proc.env,
                                             stdout=log, stderr=subprocess.STDOUT)
            procs.append(proc)
        db = data / "db.sqlite"
        wait_for(lambda: len([r for r in runs(db) if r["outcome"] == "success"]) >= 4, 30, "four prune runs")
        holders = {r["holder"] for r in runs(db)}
        assert len(holders) == 1, holders  # only the lease holder runs jobs
        leader_pid = int(holders.pop().split(":")[1])
        leader = next(p for p in procs if p.proc.pid == leader_pid)
        standby = next(p for p in procs if p is not leader)
        killed_at = time.monotonic()
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        last_id = runs(db)[-1]["id"]
        taken = wait_for(lambda: [r for r in runs(db) if r["id"] > last_id and r["outcome"] == "success"
                                  and r["holder"].split(":")[1] == str(standby.proc.pid)], 30, "the takeover")
        assert taken and time.monotonic() - killed_at < 10
        assert all(json.loads(r["figures"])["seconds"] >= 0 for r in runs(db) if r["outcome"] == "success")
        # a graceful stop releases the lease at once
        standby.stop()
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM scheduler_lease").fetchone()[0] == 0
        assert "released the lease" in standby.log()
    finally:
        for proc in procs:
            proc.stop()


def test_prune_keeps_what_is_live_and_deletes_what_is_old(tmp_path):
    from scheduler.jobs import prune

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    long_ago = utcnow() - dt.timedelta(days=40)
    for n, (status, finished) in enumerate([("succeeded", long_ago), ("failed", long_ago), ("succeeded", utcnow()),
                                            ("queued", None), ("running", None)]):
        Job.create(id=f"{n:032x}", key=f"{n:064x}", status=status, text="t", voice="v", format="wav",
                   created_at=long_ago, finished_at=finished)
    WorkerHeartbeat.create(id="dead", hostname="h", pid=1, heartbeat_at=long_ago)
    WorkerHeartbeat.create(id="alive", hostname="h", pid=2)
    AdminSession.create(id="s" * 64, admin="a", csrf_digest="c", expires_at=utcnow() - dt.timedelta(seconds=1),
                        client="127.0.0.1")
    LoginFailure.create(scope="address:127.0.0.2", failures=3, last_at=long_ago)
    figures = prune.run(JobContext(Settings(job_retention_days=30)))
    assert figures == {"jobs": 2, "scheduler_runs": 0, "workers": 1, "probes": 0, "sessions": 1,
                       "login_failures": 1}
    assert sorted(j.status for j in Job.select()) == ["queued", "running", "succeeded"]
    assert [w.id for w in WorkerHeartbeat.select()] == ["alive"]
    db.close()


def test_run_now_backs_the_database_up_verified_and_rotated(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"ENGINES": "espeak", "BACKUP_KEEP": "2",
                                                  "SCHEDULER_LEASE_S": "1"})
    key = run_cli(proc, "keys", "create", "ops", "--admin").stdout.strip()
    auth = {"Authorization": f"Bearer {key}"}
    try:
        proc.start().wait_ready()
        with httpx.Client(base_url=proc.url, headers=auth, timeout=30) as c:
            for _ in range(3):
                asked = c.post("/api/admin/scheduler/backup/run")
                assert asked.status_code == 202 and asked.json()["outcome"] == "requested"

                def done(run_id=asked.json()["id"]):
                    listed = c.get("/api/admin/scheduler", params={"job": "backup"}).json()["runs"]
                    return next((r for r in listed if r["id"] == run_id and r["finished_at"]), None)

                run = wait_for(done, 30, "the backup run")
                assert run["outcome"] == "success", run
                assert run["requested_by"].startswith("key:") and run["figures"]["bytes"] > 0
            listing = c.get("/api/admin/scheduler").json()
            assert {j["name"] for j in listing["jobs"]} == {"evict", "reap", "prune", "backup"} and listing["leader"]
            assert c.post("/api/admin/scheduler/nothing/run").status_code == 404
        backups = list_backups(proc.data_dir / "backups")
        assert len(backups) == 2  # BACKUP_KEEP
        assert integrity_ok(backups[-1]) == "ok"
        with sqlite3.connect(backups[-1]) as copy:  # the copy holds the data, e.g. the key that asked
            assert copy.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0] == 1
        with proc.db() as db:
            audited = db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'scheduler.run_now'").fetchone()[0]
        assert audited == 3
    finally:
        proc.stop()


@pytest.mark.parametrize("cron", ["every night", "61 3 * * *"])
def test_a_bad_backup_schedule_fails_at_start_up(cron):
    from runtime.settings import SettingsError

    with pytest.raises(SettingsError, match="BACKUP_CRON"):
        Settings.from_env({"BACKUP_CRON": cron})


def test_the_reaper_requeues_jobs_of_dead_workers_then_gives_up(tmp_path):
    from runtime.workers import Liveness
    from scheduler.jobs import reap

    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db)
    stale = utcnow() - dt.timedelta(minutes=5)
    WorkerHeartbeat.create(id="gone:1:a", hostname="elsewhere", pid=1, heartbeat_at=stale)
    WorkerHeartbeat.create(id="here:2:b", hostname="elsewhere", pid=2)
    for job_id, worker, attempts in (("1" * 32, "gone:1:a", 1), ("2" * 32, "gone:1:a", 3), ("3" * 32, "here:2:b", 1)):
        Job.create(id=job_id, key=job_id * 2, status="running", text="t", voice="v", format="wav",
                   worker_id=worker, attempts=attempts, chunks_total=4)
    sent = []

    class Context:  # the parts of the process's services the reaper uses
        settings = Settings()

        class services:
            liveness = Liveness(10)

            class speech:
                enqueue = staticmethod(lambda job_id, chunks: sent.append((job_id, chunks)))

    assert reap.run(Context) == {"requeued": 1, "failed": 1}
    assert sent == [("1" * 32, 4)]
    gave_up = Job.get_by_id("2" * 32)
    assert gave_up.status == "failed" and "3 times" in gave_up.error
    assert Job.get_by_id("3" * 32).status == "running"  # its worker is alive: left alone
    db.close()


def test_backup_restore_round_trip_from_the_cli(tmp_path):
    proc = ServiceProcess(tmp_path / "data", env={"ENGINES": "espeak"})
    assert run_cli(proc, "keys", "create", "before-backup").returncode == 0
    made = run_cli(proc, "backup")
    assert made.returncode == 0 and "verified" in made.stdout, made.stderr
    backup_file = list_backups(proc.data_dir / "backups")[-1]
    assert run_cli(proc, "keys", "create", "after-backup").returncode == 0
    proc.start().wait_ready()
    refused = run_cli(proc, "restore", str(backup_file))
    assert refused.returncode == 1 and "the service is running" in refused.stderr
    proc.stop()
    not_a_backup = tmp_path / "junk.sqlite"
    not_a_backup.write_bytes(b"junk" * 100)
    assert run_cli(proc, "restore", str(not_a_backup)).returncode == 1
    with proc.db() as db:
        versions = db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0]
    restored = run_cli(proc, "restore", str(backup_file))
    assert restored.returncode == 0 and "integrity ok" in restored.stdout, restored.stderr
    with proc.db() as db:
        names = {row[0] for row in db.execute("SELECT name FROM api_keys")}
        assert names == {"before-backup"}  # every row of the backup, nothing of what came after
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == versions
    kept = [p.name for p in list_backups(proc.data_dir / "backups") if "before-restore" in p.name]
    assert len(kept) == 1  # the database that was replaced
    proc.start().wait_ready()  # and the service runs on the restored database
    proc.stop()


def test_migrations_back_an_existing_database_up_first(tmp_path, monkeypatch):
    import types

    import storage.migrations as migrations
    from runtime.services import pre_migration_backup

    settings = Settings(data_dir=tmp_path)
    db = open_database(settings.database_url)
    assert migrate(db, pre_migration_backup(settings))  # a new database: migrated, nothing to back up
    assert list_backups(tmp_path / "backups") == []
    # an upgrade brings a new migration
    new = types.ModuleType("storage.migrations.m9999_upgrade")
    new.up = lambda database: database.execute_sql("CREATE TABLE upgraded (id INTEGER)")
    monkeypatch.setitem(sys.modules, new.__name__, new)
    shipped = migrations.available()
    monkeypatch.setattr(migrations, "available", lambda: [*shipped, (9999, "m9999_upgrade")])
    assert migrate(db, pre_migration_backup(settings)) == ["m9999_upgrade"]
    backups = list_backups(tmp_path / "backups")
    assert len(backups) == 1 and "before-m9999" in backups[0].name and integrity_ok(backups[0]) == "ok"
    with sqlite3.connect(backups[0]) as copy:  # the copy is the database as it was before the upgrade
        assert not copy.execute("SELECT name FROM sqlite_master WHERE name = 'upgraded'").fetchall()
    assert migrate(db, pre_migration_backup(settings)) == []  # nothing pending: no backup
    assert len(list_backups(tmp_path / "backups")) == 1
    db.close()
