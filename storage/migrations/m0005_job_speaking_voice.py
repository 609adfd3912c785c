"""The voice a running job is speaking with (it changes when the job falls back), so a live stream reads
that voice's sentences even when a chain holds two voices of one engine."""

STATEMENTS = ["ALTER TABLE jobs ADD COLUMN speaking_voice VARCHAR(200)"]


def up(db) -> None:
    for sql in STATEMENTS:
        db.execute_sql(sql)
