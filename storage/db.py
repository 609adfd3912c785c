"""``DATABASE_URL`` → a Peewee database bound to the models' ``DatabaseProxy``.

SQLite (the default) runs in WAL mode with a busy timeout, foreign keys on and ``synchronous=NORMAL``:
safe against crashes, and readers never block the writer. Postgres URLs (``postgres://…``) work as
Peewee's ``playhouse.db_url`` understands them.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import urlparse

from peewee import Database, DatabaseProxy, SqliteDatabase
from playhouse.db_url import connect as _connect_url

proxy = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,  # ms
    "foreign_keys": 1,
    "synchronous": "normal",
}


def open_database(url: str) -> Database:
    """Open ``url``, bind the models to it and return it. Creates the SQLite file's directory."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _enable_wal(path)
        db = SqliteDatabase(path or ":memory:", pragmas=SQLITE_PRAGMAS, timeout=10)
    else:
        db = _connect_url(url)
    proxy.initialize(db)
    return db


def _enable_wal(path: str, attempts: int = 100) -> None:
    """Switch the file to WAL once, before any pooled connection opens it. Changing the journal mode needs
    the database to itself: when several processes start together on a new file, SQLite answers "database
    is locked" at once rather than waiting, so this retries for up to 10 s. WAL then persists in the file,
    and the per-connection pragma is a no-op."""
    for attempt in range(attempts):
        try:
            with sqlite3.connect(path, timeout=10) as conn:
                conn.execute("PRAGMA journal_mode=wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def is_sqlite(db: Database) -> bool:
    return isinstance(db, SqliteDatabase)
