"""Progress of long jobs: chunks (sentences) in all, done so far, and taken from the chunk cache."""

STATEMENTS = [
    "ALTER TABLE jobs ADD COLUMN chunks_total INTEGER NOT NULL DEFAULT 1",
    "ALTER TABLE jobs ADD COLUMN chunks_done INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE jobs ADD COLUMN chunks_cached INTEGER NOT NULL DEFAULT 0",
]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
