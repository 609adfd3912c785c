"""Admin sessions: server-side rows, a random token in the cookie, only its SHA-256 in the database.

A login makes a new token (no fixation: a token sent before login is never adopted). A session ends after
``SESSION_IDLE_S`` unused or ``SESSION_MAX_S`` after login, at logout, when its admin is disabled, and — all
but the one in use — when its admin changes password. ``last_seen_at`` is written at most once a minute.
Each session has a CSRF token (returned at login; its digest stored), which every state-changing request
made with the cookie must send back in ``X-CSRF-Token``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from runtime.security.keys import digest
from storage.models import Admin, AdminSession, utcnow

COOKIE = "ef_session"
SECURE_COOKIE = "__Host-ef_session"  # over HTTPS: Secure, Path=/, no Domain (the prefix enforces them)
CSRF_HEADER = "x-csrf-token"
TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class SessionInfo:
    id: str  # the token's digest
    admin: str
    csrf_digest: str
    created_at: dt.datetime


class Sessions:
    def __init__(self, idle_s: float, max_s: float) -> None:
        self.idle = dt.timedelta(seconds=idle_s)
        self.max = dt.timedelta(seconds=max_s)

    def create(self, admin: str, client: str) -> tuple[str, str]:
        """A new session: (cookie token, CSRF token), each 256 bits from ``secrets``."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        AdminSession.create(id=digest(token), admin=admin, csrf_digest=digest(csrf), created_at=now,
                            last_seen_at=now, expires_at=now + self.max, client=client[:64])
        return token, csrf

    def find(self, token: str) -> SessionInfo | None:
        if not token or len(token) > 200:
            return None
        row = (AdminSession.select(AdminSession, Admin.disabled).join(Admin, on=(AdminSession.admin == Admin.name))
               .where(AdminSession.id == digest(token)).objects().first())
        now = utcnow()
        if row is None:
            return None
        if row.disabled or row.expires_at <= now or row.last_seen_at + self.idle <= now:
            AdminSession.delete().where(AdminSession.id == row.id).execute()
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            AdminSession.update(last_seen_at=now).where(AdminSession.id == row.id).execute()
        return SessionInfo(row.id, row.admin, row.csrf_digest, row.created_at)

    @staticmethod
    def csrf_ok(session: SessionInfo, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(digest(sent), session.csrf_digest)

    @staticmethod
    def end(session_id: str) -> None:
        AdminSession.delete().where(AdminSession.id == session_id).execute()

    @staticmethod
    def end_all(admin: str, keep: str | None = None) -> int:
        query = AdminSession.delete().where(AdminSession.admin == admin)
        if keep:
            query = query.where(AdminSession.id != keep)
        return query.execute()
