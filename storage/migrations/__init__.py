"""Schema migrations, applied in order at start-up.

Each module ``mNNNN_name.py`` defines ``up(db)``. Applied versions are recorded in ``schema_version``.
Migrations freeze the schema they create (their own DDL), so later model changes never alter history.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable

from loguru import logger
from peewee import Database

from storage.db import is_sqlite
from storage.models import SchemaVersion

_NAME = re.compile(r"^m(\d{4})_\w+$")


def available() -> list[tuple[int, str]]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = _NAME.match(info.name)
        if match:
            found.append((int(match.group(1)), info.name))
    found.sort()
    versions = [v for v, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {found}")
    return found


def migrate(db: Database, backup: Callable[[str], object] | None = None) -> list[str]:
    """Apply every pending migration; returns the names applied. Safe to call from several processes.
    ``backup(label)`` is called once, under the migration lock, before the first migration that changes an
    existing database (the service passes a SQLite backup into ``DATA_DIR/backups``)."""
    SchemaVersion.create_table(safe=True)
    applied: list[str] = []
    fresh: bool | None = None  # decided at the first pending migration: a new database needs no backup
    for version, name in available():
        # IMMEDIATE takes SQLite's write lock up front, so two starting processes cannot both apply one.
        ctx = db.atomic("IMMEDIATE") if is_sqlite(db) else db.atomic()
        with ctx:
            if not is_sqlite(db):
                db.execute_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")
            if SchemaVersion.get_or_none(SchemaVersion.version == version):
                continue
            if fresh is None:
                fresh = not SchemaVersion.select().exists()
                if backup is not None and not fresh:
                    backup(f"before-{name.split('_')[0]}")
            importlib.import_module(f"{__name__}.{name}").up(db)
            SchemaVersion.create(version=version, name=name)
            applied.append(name)
            logger.info("applied migration {}", name)
    return applied


def current_version() -> int:
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0
