"""Who asked for a job (``ip:<address>`` now, ``key:<id>`` once API keys exist), for per-caller fairness."""

STATEMENTS = [
    "ALTER TABLE jobs ADD COLUMN caller VARCHAR(200)",
    "CREATE INDEX jobs_caller_status ON jobs (caller, status)",
]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
