"""Jobs, cache entries, worker heartbeats. Portable DDL (SQLite and Postgres)."""

STATEMENTS = [
    """CREATE TABLE jobs (
        id VARCHAR(32) PRIMARY KEY,
        key VARCHAR(64) NOT NULL,
        status VARCHAR(16) NOT NULL,
        text TEXT NOT NULL,
        voice VARCHAR(200) NOT NULL,
        format VARCHAR(8) NOT NULL,
        speed REAL NOT NULL,
        audio_key VARCHAR(64),
        engine VARCHAR(32),
        fallback BOOLEAN NOT NULL DEFAULT FALSE,
        from_cache BOOLEAN NOT NULL DEFAULT FALSE,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker_id VARCHAR(100),
        created_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        audio_seconds REAL
    )""",
    "CREATE INDEX jobs_key ON jobs (key)",
    "CREATE INDEX jobs_status ON jobs (status)",
    # Single-flight across every process: at most one unfinished job per cache key.
    "CREATE UNIQUE INDEX jobs_one_active_per_key ON jobs (key) WHERE status IN ('queued', 'running')",
    """CREATE TABLE cache_entries (
        key VARCHAR(64) PRIMARY KEY,
        format VARCHAR(8) NOT NULL,
        path TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        engine VARCHAR(32) NOT NULL,
        voice VARCHAR(200) NOT NULL,
        audio_seconds REAL NOT NULL,
        created_at TIMESTAMP NOT NULL,
        last_access_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX cache_entries_last_access ON cache_entries (last_access_at)",
    """CREATE TABLE workers (
        id VARCHAR(100) PRIMARY KEY,
        hostname VARCHAR(200) NOT NULL,
        pid INTEGER NOT NULL,
        started_at TIMESTAMP NOT NULL,
        heartbeat_at TIMESTAMP NOT NULL,
        engines TEXT NOT NULL DEFAULT ''
    )""",
]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
