"""The scheduler: the lease that makes one instance the leader, and a record of every job run (and of
"run now" requests, which wait as rows with outcome 'requested' until the leader picks them up)."""

STATEMENTS = [
    """CREATE TABLE scheduler_lease (
        name VARCHAR(64) PRIMARY KEY,
        holder VARCHAR(200) NOT NULL,
        acquired_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE scheduler_runs (
        id {autoincrement},
        job VARCHAR(64) NOT NULL,
        requested_by VARCHAR(200),
        holder VARCHAR(200),
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        outcome VARCHAR(16) NOT NULL,
        figures TEXT NOT NULL DEFAULT '{{}}',
        error TEXT,
        created_at TIMESTAMP NOT NULL
    )""",
    "CREATE INDEX scheduler_runs_job ON scheduler_runs (job, id)",
    "CREATE INDEX scheduler_runs_outcome ON scheduler_runs (outcome)",
]


def up(db) -> None:
    from storage.db import is_sqlite

    autoincrement = "INTEGER PRIMARY KEY AUTOINCREMENT" if is_sqlite(db) else "BIGSERIAL PRIMARY KEY"
    for sql in STATEMENTS:
        db.execute_sql(sql.format(autoincrement=autoincrement) if "{" in sql else sql)
