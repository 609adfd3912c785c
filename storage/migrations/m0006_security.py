"""Admins, their sessions, API keys, the audit log and login throttling counters (runtime/security)."""

from storage.db import is_sqlite

STATEMENTS = [
    """CREATE TABLE admins (
        name VARCHAR(64) PRIMARY KEY,
        password_hash TEXT NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP NOT NULL,
        password_changed_at TIMESTAMP NOT NULL,
        totp_secret VARCHAR(64),
        totp_pending VARCHAR(64),
        totp_last_step BIGINT,
        recovery_codes TEXT
    )""",
    """CREATE TABLE admin_sessions (
        id VARCHAR(64) PRIMARY KEY,
        admin VARCHAR(64) NOT NULL,
        csrf_digest VARCHAR(64) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        last_seen_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL,
        client VARCHAR(64) NOT NULL
    )""",
    "CREATE INDEX admin_sessions_admin ON admin_sessions (admin)",
    """CREATE TABLE api_keys (
        id VARCHAR(16) PRIMARY KEY,
        name VARCHAR(100) NOT NULL,
        prefix VARCHAR(16) NOT NULL,
        digest VARCHAR(64) NOT NULL UNIQUE,
        level VARCHAR(8) NOT NULL,
        created_by VARCHAR(100) NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP,
        revoked_at TIMESTAMP,
        last_used_at TIMESTAMP
    )""",
    """CREATE TABLE audit_log (
        id {autoincrement},
        at TIMESTAMP NOT NULL,
        actor VARCHAR(200) NOT NULL,
        client VARCHAR(64) NOT NULL,
        action VARCHAR(64) NOT NULL,
        target VARCHAR(200) NOT NULL DEFAULT '',
        outcome VARCHAR(16) NOT NULL,
        details TEXT NOT NULL DEFAULT '{{}}'
    )""",
    "CREATE INDEX audit_log_at ON audit_log (at)",
    "CREATE INDEX audit_log_action ON audit_log (action)",
    "CREATE INDEX audit_log_actor ON audit_log (actor)",
    """CREATE TABLE login_failures (
        scope VARCHAR(200) PRIMARY KEY,
        failures INTEGER NOT NULL,
        last_at TIMESTAMP NOT NULL
    )""",
]


def up(db) -> None:
    autoincrement = "INTEGER PRIMARY KEY AUTOINCREMENT" if is_sqlite(db) else "BIGSERIAL PRIMARY KEY"
    for sql in STATEMENTS:
        db.execute_sql(sql.format(autoincrement=autoincrement) if "{" in sql else sql)
