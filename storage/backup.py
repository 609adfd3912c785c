"""Database backups: SQLite's online backup API (safe while the service writes, WAL included) into a
directory, each copy verified with ``PRAGMA integrity_check``, the newest ``keep`` kept. Postgres: ``pg_dump``
when it is installed."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import urlparse

PREFIX = "db-"


class BackupError(RuntimeError):
    """A backup could not be made or did not verify; the message says why."""


def sqlite_path(database_url: str) -> Path | None:
    if not database_url.startswith("sqlite:///"):
        return None
    path = database_url[len("sqlite:///"):]
    return Path(path) if path and path != ":memory:" else None


def integrity_ok(path: Path) -> str:
    """``ok``, or what SQLite's integrity check found."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))


def backup(database_url: str, directory: Path, keep: int, label: str = "") -> dict:
    """Copy the database into ``directory``; returns figures (file, bytes, kept, removed). ``label`` is
    added to the file name (``before-m0009``)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ") + (f"-{label}" if label else "")
    source = sqlite_path(database_url)
    if source is not None:
        target = directory / f"{PREFIX}{stamp}.sqlite"
        partial = target.with_suffix(".partial")
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
            src.backup(dst)
        verdict = integrity_ok(partial)
        if verdict != "ok":
            partial.unlink(missing_ok=True)
            raise BackupError(f"the copy of {source} failed its integrity check: {verdict}")
        os.replace(partial, target)
    elif urlparse(database_url).scheme.startswith("postgres"):
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise BackupError("the database is Postgres and pg_dump is not installed (apt-get install "
                              "postgresql-client): no backup was made")
        target = directory / f"{PREFIX}{stamp}.pgdump"
        done = subprocess.run([pg_dump, "--format=custom", f"--file={target}", database_url],
                              capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            target.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    else:
        raise BackupError(f"cannot back up a database at {urlparse(database_url).scheme}://")
    removed = rotate(directory, keep)
    return {"file": target.name, "bytes": target.stat().st_size, "removed": removed,
            "kept": len(list_backups(directory))}


def list_backups(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob(f"{PREFIX}*") if p.suffix in (".sqlite", ".pgdump"))


def rotate(directory: Path, keep: int) -> int:
    old = list_backups(directory)[:-keep] if keep > 0 else []
    for path in old:
        path.unlink(missing_ok=True)
    return len(old)


class RestoreRefused(RuntimeError):
    """A restore that would lose data or could not be verified; the message says why and what to do."""


def restore(database_url: str, file: Path, backup_dir: Path, keep: int) -> dict:
    """Put ``file`` (a backup made by ``backup``) in place of the SQLite database. The file is verified first;
    the database being replaced is backed up (kept beside the others); its ``-wal`` and ``-shm`` files are
    removed with it, so SQLite cannot replay a log that belongs to the old database. The caller makes sure no
    process writes (``runtime.cli`` checks worker heartbeats and the scheduler lease)."""
    target = sqlite_path(database_url)
    if target is None:
        raise RestoreRefused("restore handles SQLite databases; for Postgres use pg_restore on the .pgdump file")
    if not file.is_file():
        raise RestoreRefused(f"{file} is not a file")
    try:
        verdict = integrity_ok(file)
        with sqlite3.connect(f"file:{file}?mode=ro", uri=True) as conn:
            conn.execute("SELECT version FROM schema_version").fetchall()
    except sqlite3.DatabaseError as exc:
        raise RestoreRefused(f"{file} is not a database backup of this service: {exc}") from None
    if verdict != "ok":
        raise RestoreRefused(f"{file} failed its integrity check: {verdict}")
    kept = backup(database_url, backup_dir, keep + 1, label="before-restore")["file"] if target.exists() else None
    partial = target.with_name(target.name + ".restoring")
    shutil.copyfile(file, partial)
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(partial, target)
    return {"restored": str(file), "replaced_kept_as": kept, "integrity": integrity_ok(target)}
