"""Content-addressed audio files on disk: ``<root>/<key[:2]>/<key>.<format>``.

Writes are atomic (temporary file in the same directory, fsync, rename), so a reader never sees a
partial file and a crash never leaves a zero-length entry under a real name. Sentence files (parts of a
longer text) skip the fsync: losing one costs a synthesis, and on a slow disk (an SD card, a USB stick)
an fsync per sentence costs more than that risk.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_TMP_PREFIX = ".tmp-"


class AudioCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def relpath(self, key: str, fmt: str) -> str:
        if not KEY_RE.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        return f"{key[:2]}/{key}.{fmt}"

    def path(self, key: str, fmt: str) -> Path:
        return self.root / self.relpath(key, fmt)

    def exists(self, key: str, fmt: str) -> bool:
        try:
            return self.path(key, fmt).stat().st_size > 0
        except FileNotFoundError:
            return False

    def write(self, key: str, fmt: str, data: bytes, durable: bool = True) -> Path:
        """Store ``data`` atomically under ``key``; refuses empty audio. ``durable=False`` skips the fsync:
        for files that are only a cache of a cache (a sentence of a longer text), which a crash may lose
        or truncate at no cost but a new synthesis (a reader that finds one unreadable synthesises it)."""
        if not data:
            raise ValueError("refusing to cache empty audio")
        final = self.path(key, fmt)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=final.parent)
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes 0600; a proxy serving the cache (X-Accel-Redirect) must read it
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final

    def remove_temporaries(self) -> int:
        """Delete temporary files left by a crash mid-write; returns how many."""
        removed = 0
        for tmp in self.root.glob(f"*/{_TMP_PREFIX}*"):
            tmp.unlink(missing_ok=True)
            removed += 1
        return removed

    def check_writable(self) -> None:
        """Raise OSError unless a file can be created, written and removed under the root."""
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.root)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(tmp)
