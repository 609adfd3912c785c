"""The version history and the pointers, in the database (``function_versions``, ``function_pointers``).

Every change of a pointer happens inside ``locked()``: one writer at a time across every process (SQLite's
write lock taken up front, a table lock on Postgres), so two deploys never get one version number and a
start-up that records the shipped files never races a deploy. Each change bumps the pointer's generation,
which is what the processes poll (``runtime.deploy.sync``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from peewee import fn

from runtime.errors import ApiError
from storage.db import is_sqlite, proxy
from storage.models import FunctionPointer, FunctionVersion, utcnow

SHIPPED, DEPLOY = "shipped", "deploy"


class DeployRefused(ApiError):
    """A deploy, promote or rollback that cannot be done; nothing was changed."""

    def __init__(self, message: str, code: str, status: int = 422) -> None:
        super().__init__(message, code=code, status=status)


def sha256(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


@contextlib.contextmanager
def locked():
    db = proxy.obj  # the database open_database bound the models to
    with db.atomic("IMMEDIATE") if is_sqlite(db) else db.atomic():
        if not is_sqlite(db):
            db.execute_sql("LOCK TABLE function_pointers IN EXCLUSIVE MODE")
        yield


def pointers() -> list[FunctionPointer]:
    return list(FunctionPointer.select())


def pointer(module: str) -> FunctionPointer | None:
    return FunctionPointer.get_or_none(FunctionPointer.module == module)


def history(module: str) -> list[FunctionVersion]:
    """Every version of ``module``, oldest first, without loading their sources."""
    return list(FunctionVersion.select(*[f for f in FunctionVersion._meta.sorted_fields if f.name != "source"])
                .where(FunctionVersion.module == module).order_by(FunctionVersion.version))


def version(module: str, number: int) -> FunctionVersion | None:
    return FunctionVersion.get_or_none((FunctionVersion.module == module) & (FunctionVersion.version == number))


def find(module: str, digest: str, options: str, origin: str | None = None) -> FunctionVersion | None:
    query = FunctionVersion.select().where((FunctionVersion.module == module) & (FunctionVersion.sha256 == digest)
                                           & (FunctionVersion.options == options))
    if origin is not None:
        query = query.where(FunctionVersion.origin == origin)
    return query.order_by(FunctionVersion.version.desc()).first()


def add(module: str, source: str, options: str, origin: str, who: str, note: str = "") -> FunctionVersion:
    """A new version numbered after the last one (call inside ``locked()``)."""
    last = FunctionVersion.select(fn.MAX(FunctionVersion.version)).where(FunctionVersion.module == module).scalar()
    return FunctionVersion.create(module=module, version=(last or 0) + 1, sha256=sha256(source), source=source,
                                  options=options, origin=origin, created_by=who[:200], note=note)


def move(module: str, who: str, reason: str, **changes: object) -> FunctionPointer:
    """Change ``module``'s pointer (``active``, ``previous``, ``canary``, ``canary_pct``), creating it if needed
    (call inside ``locked()``)."""
    row = pointer(module)
    if row is None:
        return FunctionPointer.create(module=module, changed_by=who[:200], reason=reason, **changes)
    for name, value in changes.items():
        setattr(row, name, value)
    row.generation += 1
    row.changed_by, row.changed_at, row.reason = who[:200], utcnow(), reason
    row.save()
    return row


def materialise(directory: Path, module: str, source: str) -> Path:
    """The file a stored version is loaded from (``DATA_DIR/functions/<module>/<sha256>.py``): written once,
    atomically, so tracebacks show its lines."""
    path = directory / module / f"{sha256(source)[:24]}.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, path)
    return path


def options_text(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True, separators=(",", ":"))


def describe(row: FunctionVersion) -> dict:
    return {"version": row.version, "sha256": row.sha256, "origin": row.origin, "created_by": row.created_by,
            "created_at": row.created_at.isoformat() + "Z", "note": row.note, "options": json.loads(row.options)}
