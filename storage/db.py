"""``DATABASE_URL`` → a Peewee database bound to the models' ``DatabaseProxy``.

SQLite (the default) runs in WAL mode with a busy timeout, foreign keys on and ``synchronous=NORMAL``:
safe against crashes, and readers never block the writer. Postgres URLs (``postgres://…``) work as
Peewee's ``playhouse.db_url`` understands them.
"""

from __future__ import annotations

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
        db = SqliteDatabase(path or ":memory:", pragmas=SQLITE_PRAGMAS, timeout=10)
    else:
        db = _connect_url(url)
    proxy.initialize(db)
    return db


def is_sqlite(db: Database) -> bool:
    return isinstance(db, SqliteDatabase)
