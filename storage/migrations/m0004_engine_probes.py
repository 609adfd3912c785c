"""Engine canary probes: the latest result per engine and worker (ok, latency, error), for /health/tts and
/readyz."""

STATEMENTS = [
    "CREATE TABLE engine_probes (engine VARCHAR(32) NOT NULL, worker_id VARCHAR(100) NOT NULL, ok BOOLEAN NOT NULL, "
    "latency_s REAL NOT NULL, error TEXT, probed_at TIMESTAMP NOT NULL, PRIMARY KEY (engine, worker_id))",
]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
