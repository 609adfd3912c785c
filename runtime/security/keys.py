"""API keys: created by admins, shown once, stored as a SHA-256 digest.

A key is ``efk_`` + 43 URL-safe characters from ``secrets`` (256 bits). A high-entropy token needs no slow
hash: nobody can guess one from its digest; Argon2 is for passwords. Lookups are cached for
``CACHE_S`` (1 s): a key revoked through one process stops working there at once and in every other
process within a second. Last use is recorded in memory and written at most every ``USE_FLUSH_S``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from storage.models import ApiKey, utcnow

TOKEN_PREFIX = "efk_"
LEVELS = ("key", "admin")
CACHE_S = 1.0
USE_FLUSH_S = 30.0


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    level: str
    expires_at: dt.datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class KeyStore:
    def __init__(self) -> None:
        self._cache: dict[str, tuple[KeyInfo | None, float]] = {}
        self._uses: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()
        self._flushed = time.monotonic()

    def create(self, name: str, level: str, created_by: str, expires_days: float | None = None) -> tuple[ApiKey, str]:
        """A new key; the token is returned here and never again."""
        if level not in LEVELS:
            raise ValueError(f"a key's level is one of {LEVELS}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = utcnow() + dt.timedelta(days=expires_days) if expires_days else None
        row = ApiKey.create(id=secrets.token_hex(6), name=name, prefix=token[:10], digest=digest(token), level=level,
                            created_by=created_by, expires_at=expires)
        return row, token

    def find(self, token: str) -> KeyInfo | None:
        """The key ``token`` stands for, if it exists, is not revoked and has not expired (the database is
        asked at most once a second per key)."""
        answered, info = self.peek(token)
        if answered:
            return info
        key = digest(token)
        row = ApiKey.get_or_none((ApiKey.digest == key) & ApiKey.revoked_at.is_null())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (KeyInfo(row.id, row.name, row.level, row.expires_at) if row else None,
                            time.monotonic() + CACHE_S)
        return self.peek(token)[1]

    def peek(self, token: str) -> tuple[bool, KeyInfo | None]:
        """``(True, key or None)`` when the answer is known without the database (a malformed token, or a
        lookup less than ``CACHE_S`` old); ``(False, None)`` when ``find`` must ask the database."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return True, None
        now = time.monotonic()
        cached = self._cache.get(digest(token))
        if cached is None or cached[1] < now:
            return False, None
        info = cached[0]
        if info is None or (info.expires_at is not None and info.expires_at <= utcnow()):
            return True, None
        with self._lock:
            self._uses[info.id] = utcnow()
        if now - self._flushed > USE_FLUSH_S:
            self.flush_uses()
        return True, info

    def flush_uses(self) -> None:
        with self._lock:
            uses, self._uses = self._uses, {}
            self._flushed = time.monotonic()
        for key_id, at in uses.items():
            ApiKey.update(last_used_at=at).where(ApiKey.id == key_id).execute()

    def revoke(self, key_id: str) -> ApiKey | None:
        row = ApiKey.get_or_none(ApiKey.id == key_id)
        if row is None or row.revoked_at is not None:
            return row
        ApiKey.update(revoked_at=utcnow()).where(ApiKey.id == key_id).execute()
        self._cache.pop(row.digest, None)
        return ApiKey.get_by_id(key_id)


def describe(row: ApiKey) -> dict:
    """A key as lists show it: never the token or its digest, only the prefix."""
    return {"id": row.id, "name": row.name, "prefix": row.prefix, "level": row.level, "created_by": row.created_by,
            "created_at": _iso(row.created_at), "expires_at": _iso(row.expires_at),
            "revoked_at": _iso(row.revoked_at), "last_used_at": _iso(row.last_used_at)}


def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(tzinfo=dt.UTC).isoformat() if value else None
