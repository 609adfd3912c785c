"""The local model manifest: every configured model file with its sha256 (``MODEL_MANIFEST``, default
``$DATA_DIR/model-manifest.json``). At start-up each engine's files are checked against it; a file that
is missing, not listed or changed disables that engine with a message saying which and how to fix it,
and the service starts with the rest. ``python -m runtime models --write-manifest`` records the files
that are configured now. Nothing is fetched from anywhere: models come from local files or packages.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from runtime.speech.engines.base import Engine, EngineError


@cache
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, computed once per process for a given size and modification time."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def load(path: Path) -> dict[str, dict] | None:
    """The manifest's files (``{absolute path: {"engine", "sha256"}}``), or None when there is none."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' must be an object")
        return files
    except (ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"the model manifest {path} is not valid ({exc}); write it again with "
                          "`python -m runtime models --write-manifest`") from None


def verify(engine: Engine, files: dict[str, dict], manifest: Path) -> None:
    """Raise EngineError naming the first model file of ``engine`` that is missing, unlisted or changed."""
    fix = "`python -m runtime models --write-manifest` records the files configured now"
    for path in engine.model_files():
        key = str(path.resolve())
        if not path.is_file():
            raise EngineError(f"{engine.name}: model file {path} is missing")
        entry = files.get(key)
        if entry is None:
            raise EngineError(f"{engine.name}: model file {path} is not in the model manifest {manifest}; {fix}")
        actual = file_sha256(path)
        if actual != entry.get("sha256"):
            raise EngineError(f"{engine.name}: model file {path} has sha256 {actual[:12]}…, the model manifest "
                              f"{manifest} says {str(entry.get('sha256'))[:12]}…: the file changed or is corrupt; "
                              f"restore it, or if the change is intended, {fix}")


def write(engines: dict[str, Engine], path: Path) -> dict[str, dict]:
    files = {str(p.resolve()): {"engine": e.name, "sha256": file_sha256(p)}
             for e in engines.values() for p in e.model_files()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": 1, "files": files}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return files
